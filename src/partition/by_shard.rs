//! Grouping a request's partitions by owning shard, pure.
//!
//! A produce or fetch names many partitions; each is owned by one shard. The
//! handler makes exactly one bus hop per owning shard carrying all that shard's
//! partitions, then puts the answers back in request order. Every item carries
//! its position in the request (partitions refused before routing keep theirs
//! too), so [`Slots`] can reassemble the response no matter in which order the
//! hops complete.

/// `(owning shard, request position, item)` grouped by shard. Shards appear in
/// order of first mention; items keep their relative order within a shard.
pub fn group_by_shard<S: Copy + PartialEq, T>(
    items: impl IntoIterator<Item = (S, usize, T)>,
) -> Vec<(S, Vec<(usize, T)>)> {
    let mut groups: Vec<(S, Vec<(usize, T)>)> = Vec::new();
    for (shard, position, item) in items {
        match groups.iter_mut().find(|(s, _)| *s == shard) {
            Some((_, group)) => group.push((position, item)),
            None => groups.push((shard, vec![(position, item)])),
        }
    }
    groups
}

/// Request-ordered slots filled in as results arrive from the shards.
pub struct Slots<R> {
    slots: Vec<Option<R>>,
}

impl<R> Slots<R> {
    pub fn new(len: usize) -> Self {
        Self {
            slots: std::iter::repeat_with(|| None).take(len).collect(),
        }
    }

    /// Stores the result for the item at `position`.
    ///
    /// Each position is filled once: a second fill or an out-of-range position is
    /// a bug in the handler's grouping.
    pub fn fill(&mut self, position: usize, result: R) {
        let slot = &mut self.slots[position];
        assert!(slot.is_none(), "request position {position} answered twice");
        *slot = Some(result);
    }

    pub fn is_filled(&self, position: usize) -> bool {
        self.slots.get(position).is_some_and(Option::is_some)
    }

    /// The results in request order; `missing` builds the result of a position no
    /// shard answered (e.g. its hop failed).
    pub fn into_ordered(self, mut missing: impl FnMut(usize) -> R) -> Vec<R> {
        self.slots
            .into_iter()
            .enumerate()
            .map(|(position, slot)| slot.unwrap_or_else(|| missing(position)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_by_shard_keeping_request_positions() {
        let items = vec![(1u32, "a"), (0, "b"), (1, "c"), (2, "d"), (0, "e")];
        let groups = group_by_shard(items.into_iter().enumerate().map(|(p, (s, i))| (s, p, i)));
        assert_eq!(
            groups,
            vec![
                (1, vec![(0, "a"), (2, "c")]),
                (0, vec![(1, "b"), (4, "e")]),
                (2, vec![(3, "d")]),
            ]
        );
    }

    #[test]
    fn one_group_per_shard_even_for_many_partitions() {
        let items = (0..1000).map(|i| (i % 2, i, i));
        let groups = group_by_shard(items);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].1.len() + groups[1].1.len(), 1000);
    }

    #[test]
    fn slots_reassemble_out_of_order_answers() {
        let mut slots = Slots::new(4);
        slots.fill(2, "c");
        slots.fill(0, "a");
        slots.fill(3, "d");
        let ordered = slots.into_ordered(|_| "missing");
        assert_eq!(ordered, vec!["a", "missing", "c", "d"]);
    }

    #[test]
    #[should_panic(expected = "answered twice")]
    fn filling_a_slot_twice_is_a_bug() {
        let mut slots = Slots::new(1);
        slots.fill(0, 1);
        slots.fill(0, 2);
    }
}
