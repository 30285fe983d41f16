//! [`ListAppend`]: a key-value state machine of append-only lists, the workload Elle-style
//! checkers read histories from (every value appended once, so a read shows the order writes
//! took effect in). The reference machine for consensus tests.

use std::collections::BTreeMap;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::machine::{BlockInfo, Outcome, RestoreError, StateMachine};
use crate::consensus::{verify_signature, PublicKey, Signature, ValidatorKey, SIGNATURE_BYTES};

/// The most micro-operations one transaction carries.
pub const OPS_PER_TRANSACTION_MAX: usize = 64;
/// The longest list a key holds; an append beyond it is refused (a bound on the state, as any
/// real machine needs).
pub const LIST_LEN_MAX: usize = 4096;
/// The most keys the machine holds; an append to a new key beyond it is refused.
pub const KEYS_MAX: usize = 1 << 16;

/// One micro-operation of a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Appends `value` to the list at `key`.
    Append {
        /// The key.
        key: u64,
        /// The value appended.
        value: u64,
    },
    /// Reads the list at `key`.
    Read {
        /// The key.
        key: u64,
    },
}

const TAG_APPEND: u8 = 1;
const TAG_READ: u8 = 2;

/// Encodes a transaction of `ops` (at most [`OPS_PER_TRANSACTION_MAX`]).
pub fn encode_transaction(ops: &[Op]) -> Bytes {
    assert!(
        ops.len() <= OPS_PER_TRANSACTION_MAX,
        "{} ops in one transaction",
        ops.len()
    );
    let mut out = BytesMut::with_capacity(1 + ops.len() * 17);
    out.put_u8(ops.len() as u8);
    for op in ops {
        match *op {
            Op::Append { key, value } => {
                out.put_u8(TAG_APPEND);
                out.put_u64(key);
                out.put_u64(value);
            }
            Op::Read { key } => {
                out.put_u8(TAG_READ);
                out.put_u64(key);
            }
        }
    }
    out.freeze()
}

/// What a client signs: a domain tag, its id, and the encoded ops.
fn client_signed_bytes(client: u64, ops: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(CLIENT_DOMAIN.len() + 8 + ops.len());
    out.extend_from_slice(CLIENT_DOMAIN);
    out.extend_from_slice(&client.to_be_bytes());
    out.extend_from_slice(ops);
    out
}

/// The domain of clients' signatures, apart from every consensus signature.
pub const CLIENT_DOMAIN: &[u8] = b"hypermesh/kv/v1/client/";

/// Bytes a signature adds to a transaction: the client's id and an Ed25519 signature.
pub const SIGNATURE_TRAILER_BYTES: usize = 8 + SIGNATURE_BYTES;

/// A transaction of `ops` signed by `client` with `key`: the ops' encoding, the client's id,
/// then its signature. A machine built [`ListAppend::with_clients`] applies only these, so a
/// Byzantine replica cannot alter or invent a client's transaction.
pub fn sign_transaction(ops: &[Op], client: u64, key: &ValidatorKey) -> Bytes {
    let body = encode_transaction(ops);
    let signature = key.sign(&client_signed_bytes(client, &body));
    let mut out = BytesMut::with_capacity(body.len() + SIGNATURE_TRAILER_BYTES);
    out.put_slice(&body);
    out.put_u64(client);
    out.put_slice(&signature.0);
    out.freeze()
}

/// The ops of a signed transaction, if `clients` holds its client's key and (unless `checked`
/// says that was seen to hold already) the signature verifies.
fn verify_signed(bytes: &[u8], clients: &BTreeMap<u64, PublicKey>, checked: bool) -> Result<Vec<Op>, String> {
    if bytes.len() < SIGNATURE_TRAILER_BYTES {
        return Err("unsigned transaction (shorter than a signature)".into());
    }
    let (body, trailer) = bytes.split_at(bytes.len() - SIGNATURE_TRAILER_BYTES);
    let client = u64::from_be_bytes(trailer[..8].try_into().expect("8 bytes"));
    let signature = Signature(trailer[8..].try_into().expect("64 bytes"));
    let Some(key) = clients.get(&client) else {
        return Err(format!("client {client} is unknown"));
    };
    if !checked && !verify_signature(key, &client_signed_bytes(client, body), &signature) {
        return Err(format!("client {client}'s signature does not verify"));
    }
    decode_transaction(body)
}

/// Decodes a transaction, naming what is wrong with a malformed one.
pub fn decode_transaction(mut bytes: &[u8]) -> Result<Vec<Op>, String> {
    let total = bytes.len();
    let at = |rest: &[u8]| total - rest.len();
    if bytes.is_empty() {
        return Err("empty transaction".into());
    }
    let count = bytes.get_u8() as usize;
    if count > OPS_PER_TRANSACTION_MAX {
        return Err(format!("{count} ops, more than {OPS_PER_TRANSACTION_MAX}"));
    }
    let mut ops = Vec::with_capacity(count);
    for i in 0..count {
        if bytes.is_empty() {
            return Err(format!("op {i} missing at byte {}", at(bytes)));
        }
        let offset = at(bytes);
        match bytes.get_u8() {
            TAG_APPEND if bytes.len() >= 16 => {
                let key = bytes.get_u64();
                ops.push(Op::Append {
                    key,
                    value: bytes.get_u64(),
                });
            }
            TAG_READ if bytes.len() >= 8 => ops.push(Op::Read { key: bytes.get_u64() }),
            TAG_APPEND | TAG_READ => return Err(format!("op {i} cut short at byte {offset}")),
            tag => return Err(format!("op {i} has unknown tag {tag} at byte {offset}")),
        }
    }
    if !bytes.is_empty() {
        return Err(format!("{} bytes after the last op", bytes.len()));
    }
    Ok(ops)
}

/// Append-only lists by key. A transaction's outcome lists, for each read, the list it saw
/// (as `count: u32` then the values), in op order; a transaction that would break a bound is
/// refused whole.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListAppend {
    lists: BTreeMap<u64, Vec<u64>>,
    height: u64,
    /// With clients, only transactions signed by one of them apply.
    clients: Option<BTreeMap<u64, PublicKey>>,
}

impl ListAppend {
    /// A machine that applies only transactions signed by one of `clients` (id → public key),
    /// refusing any other: what a cluster with Byzantine validators needs, since a leader or a
    /// forwarding replica could otherwise alter or invent transactions.
    pub fn with_clients(clients: BTreeMap<u64, PublicKey>) -> Self {
        ListAppend {
            clients: Some(clients),
            ..ListAppend::default()
        }
    }

    /// The list at `key` now.
    pub fn list(&self, key: u64) -> &[u64] {
        self.lists.get(&key).map_or(&[], Vec::as_slice)
    }

    /// The height of the last block applied.
    pub fn height(&self) -> u64 {
        self.height
    }

    fn apply_one(&mut self, transaction: &Bytes, checked: bool) -> Outcome {
        let decoded = match &self.clients {
            Some(clients) => verify_signed(transaction, clients, checked),
            None => decode_transaction(transaction),
        };
        let ops = match decoded {
            Ok(ops) => ops,
            Err(e) => return Outcome::Refused(e),
        };
        // All or nothing: check the bounds first.
        let mut growth: BTreeMap<u64, usize> = BTreeMap::new();
        for op in &ops {
            if let Op::Append { key, .. } = op {
                *growth.entry(*key).or_default() += 1;
            }
        }
        let new_keys = growth.keys().filter(|k| !self.lists.contains_key(k)).count();
        if self.lists.len() + new_keys > KEYS_MAX {
            return Outcome::Refused(format!("more than {KEYS_MAX} keys"));
        }
        if let Some((key, _)) = growth
            .iter()
            .find(|(key, n)| self.list(**key).len() + **n > LIST_LEN_MAX)
        {
            return Outcome::Refused(format!("the list at key {key} would exceed {LIST_LEN_MAX} values"));
        }
        let mut answer = BytesMut::new();
        for op in ops {
            match op {
                Op::Append { key, value } => self.lists.entry(key).or_default().push(value),
                Op::Read { key } => {
                    let list = self.list(key);
                    answer.put_u32(list.len() as u32);
                    for v in list {
                        answer.put_u64(*v);
                    }
                }
            }
        }
        Outcome::Applied(answer.freeze())
    }
}

impl ListAppend {
    /// The lists `reads` name, encoded as a transaction's answer (`count: u32` then the values,
    /// per read).
    fn read_lists(&self, keys: impl IntoIterator<Item = u64>) -> Bytes {
        let mut answer = BytesMut::new();
        for key in keys {
            let list = self.list(key);
            answer.put_u32(list.len() as u32);
            for v in list {
                answer.put_u64(*v);
            }
        }
        answer.freeze()
    }
}

/// The lists an answer to `reads` read ops holds, as [`ListAppend`] encodes them (`count: u32`
/// then the values, per read); `None` if the bytes are not exactly that.
pub fn decode_read_lists(mut body: &[u8], reads: usize) -> Option<Vec<Vec<u64>>> {
    let mut lists = Vec::with_capacity(reads);
    for _ in 0..reads {
        if body.len() < 4 {
            return None;
        }
        let n = body.get_u32() as usize;
        if body.len() < n.checked_mul(8)? {
            return None;
        }
        lists.push((0..n).map(|_| body.get_u64()).collect());
    }
    body.is_empty().then_some(lists)
}

impl StateMachine for ListAppend {
    /// A query is a transaction of reads only (encoded by [`encode_transaction`], unsigned),
    /// answered as the transaction would be.
    fn query(&self, request: &[u8]) -> Result<Bytes, String> {
        let ops = decode_transaction(request)?;
        let mut keys = Vec::with_capacity(ops.len());
        for (i, op) in ops.iter().enumerate() {
            match *op {
                Op::Read { key } => keys.push(key),
                Op::Append { .. } => return Err(format!("op {i} appends: a query only reads")),
            }
        }
        Ok(self.read_lists(keys))
    }

    /// A transaction's encoding, and with clients its signature by a known client.
    fn check(&self, transaction: &[u8]) -> Result<(), String> {
        match &self.clients {
            Some(clients) => verify_signed(transaction, clients, false).map(drop),
            None => decode_transaction(transaction).map(drop),
        }
    }

    fn apply(&mut self, block: BlockInfo, transactions: &[Bytes], checked: &[bool]) -> Vec<Outcome> {
        let height = block.height;
        assert_eq!(checked.len(), transactions.len(), "one flag per transaction");
        assert!(
            height > self.height,
            "block {height} applied after block {}: heights arrive in order",
            self.height
        );
        self.height = height;
        transactions
            .iter()
            .zip(checked)
            .map(|(t, checked)| self.apply_one(t, *checked))
            .collect()
    }

    fn snapshot(&self) -> Bytes {
        let mut out = BytesMut::new();
        out.put_u64(self.height);
        out.put_u32(self.lists.len() as u32);
        for (key, list) in &self.lists {
            out.put_u64(*key);
            out.put_u32(list.len() as u32);
            for v in list {
                out.put_u64(*v);
            }
        }
        out.freeze()
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), RestoreError> {
        let total = snapshot.len();
        let mut b = snapshot;
        let fail = |b: &[u8], reason: &str| RestoreError {
            offset: total - b.len(),
            reason: reason.to_string(),
        };
        if b.len() < 12 {
            return Err(fail(b, "shorter than its header"));
        }
        let height = b.get_u64();
        let keys = b.get_u32() as usize;
        if keys > KEYS_MAX {
            return Err(fail(b, "more keys than the machine holds"));
        }
        let mut lists = BTreeMap::new();
        let mut previous: Option<u64> = None;
        for _ in 0..keys {
            if b.len() < 12 {
                return Err(fail(b, "a key cut short"));
            }
            let key = b.get_u64();
            if previous.is_some_and(|p| p >= key) {
                return Err(fail(b, "keys out of order"));
            }
            previous = Some(key);
            let len = b.get_u32() as usize;
            if len > LIST_LEN_MAX || b.len() < len * 8 {
                return Err(fail(b, "a list cut short or too long"));
            }
            lists.insert(key, (0..len).map(|_| b.get_u64()).collect());
        }
        if !b.is_empty() {
            return Err(fail(b, "bytes after the last list"));
        }
        self.lists = lists;
        self.height = height;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The block at `height` (this machine keeps no clock).
    fn at(height: u64) -> BlockInfo {
        BlockInfo {
            height,
            timestamp_ms: 0,
        }
    }

    /// Applies `transactions` as a leader's choice: none checked at admission here.
    fn apply_all(m: &mut ListAppend, height: u64, transactions: &[Bytes]) -> Vec<Outcome> {
        m.apply(at(height), transactions, &vec![false; transactions.len()])
    }

    #[test]
    fn queries_read_without_changing_anything() {
        let mut m = ListAppend::default();
        apply_all(&mut m, 1, &[encode_transaction(&[append(1, 10), append(1, 11)])]);
        let before = m.snapshot();
        let answer = m
            .query(&encode_transaction(&[Op::Read { key: 1 }, Op::Read { key: 2 }]))
            .unwrap();
        assert_eq!(
            &answer[..],
            &[0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0, 11, 0, 0, 0, 0][..]
        );
        assert_eq!(
            m.query(&encode_transaction(&[Op::Read { key: 1 }, append(1, 12)])),
            Err("op 1 appends: a query only reads".into())
        );
        assert!(m.query(b"").is_err());
        assert_eq!(m.snapshot(), before);
    }

    #[test]
    fn a_machine_with_clients_applies_only_their_signed_transactions() {
        let key = ValidatorKey::from_seed(&[5; 32]);
        let other = ValidatorKey::from_seed(&[6; 32]);
        let mut m = ListAppend::with_clients(BTreeMap::from([(7, key.public_key())]));
        let ops = [append(1, 10)];
        let signed = sign_transaction(&ops, 7, &key);
        let mut altered = signed.to_vec();
        altered[10] ^= 1;
        let out = apply_all(
            &mut m,
            1,
            &[
                signed.clone(),
                encode_transaction(&ops),
                sign_transaction(&ops, 7, &other),
                sign_transaction(&ops, 8, &key),
                Bytes::from(altered),
            ],
        );
        assert_eq!(out[0], Outcome::Applied(Bytes::new()));
        for (i, why) in [
            (1, "unsigned"),
            (2, "client 7's signature does not verify"),
            (3, "client 8 is unknown"),
            (4, "client 7's signature does not verify"),
        ] {
            match &out[i] {
                Outcome::Refused(r) => assert!(r.contains(why), "{i}: {r}"),
                o => panic!("{i}: {o:?}"),
            }
        }
        assert_eq!(m.list(1), &[10]);
    }

    #[test]
    fn admission_checks_refuse_what_apply_refuses_and_spare_apply_the_signature() {
        let key = ValidatorKey::from_seed(&[5; 32]);
        let other = ValidatorKey::from_seed(&[6; 32]);
        let m = ListAppend::with_clients(BTreeMap::from([(7, key.public_key())]));
        let ops = [append(1, 10)];
        let signed = sign_transaction(&ops, 7, &key);
        assert_eq!(m.check(&signed), Ok(()));
        for (bad, why) in [
            (encode_transaction(&ops), "unsigned"),
            (sign_transaction(&ops, 7, &other), "signature does not verify"),
            (sign_transaction(&ops, 8, &key), "client 8 is unknown"),
        ] {
            let refused = m.check(&bad).expect_err("refused at admission");
            assert!(refused.contains(why), "{refused}");
            // The same reason at apply, for a leader that proposed it anyway.
            let mut applied = m.clone();
            assert_eq!(apply_all(&mut applied, 1, &[bad])[0], Outcome::Refused(refused));
        }
        // Checked at admission: the same outcome, without verifying again; what does not
        // depend on the signature (a known client, the encoding) is still checked.
        let mut a = m.clone();
        let mut b = m.clone();
        assert_eq!(
            a.apply(at(1), std::slice::from_ref(&signed), &[true]),
            apply_all(&mut b, 1, &[signed])
        );
        assert_eq!(a, b);
        let unknown = sign_transaction(&ops, 8, &key);
        assert!(matches!(&a.apply(at(2), &[unknown], &[true])[0], Outcome::Refused(r) if r.contains("unknown")));
        assert!(ListAppend::default()
            .check(&[1, 9])
            .unwrap_err()
            .contains("unknown tag 9"));
    }

    fn append(key: u64, value: u64) -> Op {
        Op::Append { key, value }
    }

    #[test]
    fn reads_see_the_appends_before_them_in_block_order() {
        let mut m = ListAppend::default();
        let out = apply_all(
            &mut m,
            1,
            &[
                encode_transaction(&[append(7, 1), append(7, 2)]),
                encode_transaction(&[Op::Read { key: 7 }, append(7, 3), Op::Read { key: 7 }]),
            ],
        );
        let mut expected = BytesMut::new();
        expected.put_u32(2);
        expected.put_u64(1);
        expected.put_u64(2);
        expected.put_u32(3);
        for v in [1, 2, 3] {
            expected.put_u64(v);
        }
        assert_eq!(out[1], Outcome::Applied(expected.freeze()));
        assert_eq!(m.list(7), &[1, 2, 3]);
    }

    #[test]
    fn a_malformed_or_oversized_transaction_is_refused_whole_and_changes_nothing() {
        let mut m = ListAppend::default();
        let big: Vec<Op> = (0..OPS_PER_TRANSACTION_MAX as u64).map(|v| append(1, v)).collect();
        for _ in 0..LIST_LEN_MAX / OPS_PER_TRANSACTION_MAX {
            let h = m.height() + 1;
            assert!(matches!(
                apply_all(&mut m, h, &[encode_transaction(&big)])[0],
                Outcome::Applied(_)
            ));
        }
        let before = m.snapshot();
        let next = m.height() + 1;
        let out = apply_all(
            &mut m,
            next,
            &[
                encode_transaction(&[append(2, 1), append(1, 9)]),
                Bytes::from_static(&[1, 9]),
            ],
        );
        assert!(matches!(&out[0], Outcome::Refused(r) if r.contains("key 1")), "{out:?}");
        assert!(
            matches!(&out[1], Outcome::Refused(r) if r.contains("unknown tag 9")),
            "{out:?}"
        );
        assert_eq!(
            m.list(2),
            &[] as &[u64],
            "a refused transaction's other appends took effect"
        );
        let mut after = m.clone();
        after.height = before.slice(..8).get_u64();
        assert_eq!(after.snapshot(), before);
    }

    #[test]
    fn a_snapshot_restores_the_same_state_and_bad_snapshots_are_refused_by_offset() {
        let mut a = ListAppend::default();
        apply_all(&mut a, 1, &[encode_transaction(&[append(3, 30), append(1, 10)])]);
        apply_all(&mut a, 2, &[encode_transaction(&[append(3, 31)])]);
        let snap = a.snapshot();
        let mut b = ListAppend::default();
        b.restore(&snap).unwrap();
        assert_eq!(a, b);
        assert_eq!(b.snapshot(), snap);
        for cut in 0..snap.len() {
            assert!(
                ListAppend::default().restore(&snap[..cut]).is_err(),
                "a snapshot cut at {cut} restored"
            );
        }
        let mut longer = snap.to_vec();
        longer.push(0);
        assert!(ListAppend::default()
            .restore(&longer)
            .unwrap_err()
            .reason
            .contains("after the last"));
    }

    #[test]
    fn every_truncation_of_a_transaction_is_an_error() {
        let t = encode_transaction(&[append(1, 2), Op::Read { key: 1 }]);
        assert_eq!(decode_transaction(&t).unwrap().len(), 2);
        for cut in 0..t.len() {
            assert!(decode_transaction(&t[..cut]).is_err(), "cut at {cut} decoded");
        }
    }
}
