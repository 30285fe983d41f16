//! The settings scenario files and flags name: each of the guide's faulty settings beside its
//! fix ([`crate::cache::Invalidation`], [`crate::cache::CacheErrors`],
//! [`crate::index::Search`], [`crate::keys::Whitespace`], and the chain's
//! [`erc8004::registries::OnRevert`]).

use erc8004::registries::OnRevert;

/// A setting with a name for each of its values.
pub trait Named: Copy + PartialEq + Sized + 'static {
    /// Every value, with its name.
    const NAMED: &'static [(Self, &'static str)];

    /// Its name.
    fn name(self) -> &'static str {
        Self::NAMED
            .iter()
            .find(|(value, _)| *value == self)
            .map(|(_, name)| *name)
            .expect("every value is named")
    }

    /// The value named `name`, if one is.
    fn from_name(name: &str) -> Option<Self> {
        Self::NAMED.iter().find(|(_, n)| *n == name).map(|(value, _)| *value)
    }

    /// Every name, quoted, for an error message: `"a" or "b"`.
    fn names() -> String {
        let quoted: Vec<String> = Self::NAMED.iter().map(|(_, name)| format!("{name:?}")).collect();
        quoted.join(" or ")
    }
}

impl Named for OnRevert {
    const NAMED: &'static [(Self, &'static str)] = &[(OnRevert::Rollback, "rollback"), (OnRevert::Keep, "keep")];
}

#[cfg(test)]
mod tests {
    use super::{Named, OnRevert};
    use crate::cache::{CacheErrors, Invalidation};
    use crate::index::Search;
    use crate::keys::Whitespace;

    fn round_trips<T: Named + std::fmt::Debug>() {
        for (value, name) in T::NAMED {
            assert_eq!((value.name(), T::from_name(name)), (*name, Some(*value)));
        }
        assert_eq!(T::from_name("no such"), None);
    }

    #[test]
    fn every_value_is_named_once_and_read_back() {
        round_trips::<Invalidation>();
        round_trips::<CacheErrors>();
        round_trips::<Search>();
        round_trips::<Whitespace>();
        round_trips::<OnRevert>();
        assert_eq!(Whitespace::names(), "\"ignored\" or \"literal\"");
    }
}
