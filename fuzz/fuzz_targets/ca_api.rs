//! Arbitrary bodies to `POST /ca/validate` and `POST /ca/issue`, and arbitrary queries to
//! `GET /ct/proof`, into `trustchain_service::CaApi`. The CA is built once per process (and
//! again only after a request changed it), not once per input.
#![no_main]

use std::cell::RefCell;

use testbed_fuzz::ca_api::FuzzedCa;

thread_local! {
    static CA: RefCell<FuzzedCa> = RefCell::new(FuzzedCa::default());
}

libfuzzer_sys::fuzz_target!(|input: &[u8]| CA.with(|ca| ca.borrow_mut().answers(input)));
