//! Units in scenario files: node selections (durations are `runtime::units`).

/// Which nodes a fault or group applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    /// Every node.
    All,
    /// Explicit indices.
    List(Vec<u32>),
    /// Indices `start..end`.
    Range(u32, u32),
    /// `count` nodes drawn from the seed.
    Random(u32),
}

impl Selection {
    /// Parses `"all"`, `"3..7"`, `"random 10"` (a list arrives as [`Selection::List`] directly),
    /// checking indices against `node_count`.
    pub fn parse(text: &str, node_count: u32) -> Result<Selection, String> {
        let t = text.trim();
        let selection = if t == "all" {
            Selection::All
        } else if let Some(n) = t.strip_prefix("random") {
            let count: u32 = n
                .trim()
                .parse()
                .map_err(|_| format!("{text:?}: expected \"random N\""))?;
            Selection::Random(count)
        } else if let Some((a, b)) = t.split_once("..") {
            let start: u32 = a
                .trim()
                .parse()
                .map_err(|_| format!("{text:?}: expected a range \"A..B\""))?;
            let end: u32 = b
                .trim()
                .parse()
                .map_err(|_| format!("{text:?}: expected a range \"A..B\""))?;
            if start >= end {
                return Err(format!("range {text:?} is empty"));
            }
            Selection::Range(start, end)
        } else {
            return Err(format!(
                "node selection {text:?}: use \"all\", \"A..B\", \"random N\" or a list of indices"
            ));
        };
        selection.check(node_count)?;
        Ok(selection)
    }

    /// Checks every index exists.
    pub fn check(&self, node_count: u32) -> Result<(), String> {
        match self {
            Selection::All => Ok(()),
            Selection::List(list) => match list.iter().find(|i| **i >= node_count) {
                Some(i) => Err(format!(
                    "node {i} does not exist (there are {node_count} nodes, 0..{node_count})"
                )),
                None if list.is_empty() => Err("empty node list".to_string()),
                None => Ok(()),
            },
            Selection::Range(_, end) if *end > node_count => {
                Err(format!("range ends at {end} but there are {node_count} nodes"))
            }
            Selection::Range(..) => Ok(()),
            Selection::Random(count) if *count > node_count => {
                Err(format!("cannot pick {count} of {node_count} nodes"))
            }
            Selection::Random(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selections_are_checked_against_the_node_count() {
        assert_eq!(Selection::parse("0..30", 50).unwrap(), Selection::Range(0, 30));
        assert_eq!(Selection::parse("random 10", 50).unwrap(), Selection::Random(10));
        assert!(Selection::parse("40..60", 50).unwrap_err().contains("50 nodes"));
        assert!(Selection::List(vec![50]).check(50).is_err());
    }
}
