//! Packing partitions into tasks so workers get even work: one task per partition by default,
//! a partition larger than the target split by file, and small partitions packed together up to
//! the target. Files keep their order, so partials concatenate in the table's file order.

use crate::partitions::{FileEntry, Partition};

/// The files of one task and what they cover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskSpec {
    /// For messages: the partition name, a range of partitions, or a partition's file range.
    pub label: String,
    pub files: Vec<FileEntry>,
    /// How many partitions the task covers (fully or partly).
    pub partitions: usize,
}

impl TaskSpec {
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// This task followed by `next`, as one task.
    fn merged(mut self, mut next: TaskSpec) -> TaskSpec {
        self.label = format!("{} + {}", self.label, next.label);
        self.partitions += next.partitions;
        self.files.append(&mut next.files);
        self
    }
}

/// Target bytes per task: the total spread over `slots` tasks (a few per worker), clamped to
/// `[min, max]`.
pub fn target_bytes(total: u64, slots: usize, min: u64, max: u64) -> u64 {
    (total / slots.max(1) as u64).clamp(min, max.max(min))
}

/// Packs `partitions` (in order) into tasks of about `target` bytes each.
pub fn pack(partitions: &[&Partition], target: u64) -> Vec<TaskSpec> {
    let target = target.max(1);
    let mut tasks = Vec::new();
    let mut open: Vec<&Partition> = Vec::new();
    let mut open_bytes = 0u64;
    let flush = |open: &mut Vec<&Partition>, open_bytes: &mut u64, tasks: &mut Vec<TaskSpec>| {
        if open.is_empty() {
            return;
        }
        let label = match open.as_slice() {
            [one] => one.name.clone(),
            [first, .., last] => format!("{} .. {} ({} partitions)", first.name, last.name, open.len()),
            [] => unreachable!(),
        };
        tasks.push(TaskSpec {
            label,
            files: open.iter().flat_map(|p| p.files.iter().cloned()).collect(),
            partitions: open.len(),
        });
        open.clear();
        *open_bytes = 0;
    };
    for partition in partitions {
        let bytes = partition.bytes();
        if bytes > target && partition.files.len() > 1 {
            flush(&mut open, &mut open_bytes, &mut tasks);
            split_partition(partition, target, &mut tasks);
            continue;
        }
        // Close the open task when this partition would take it further past the target than
        // stopping short does: tasks come out close to the target on both sides, so
        // total / target tasks of equal size, not n full ones and a small remainder.
        if !open.is_empty() && open_bytes + bytes / 2 > target {
            flush(&mut open, &mut open_bytes, &mut tasks);
        }
        open.push(partition);
        open_bytes += bytes;
    }
    flush(&mut open, &mut open_bytes, &mut tasks);
    tasks
}

fn split_partition(partition: &Partition, target: u64, tasks: &mut Vec<TaskSpec>) {
    let mut chunks: Vec<Vec<FileEntry>> = Vec::new();
    let mut bytes = 0u64;
    for file in &partition.files {
        match chunks.last_mut() {
            Some(chunk) if bytes + file.size <= target => {
                chunk.push(file.clone());
                bytes += file.size;
            }
            _ => {
                chunks.push(vec![file.clone()]);
                bytes = file.size;
            }
        }
    }
    let count = chunks.len();
    let mut first_file = 1;
    for chunk in chunks {
        let last_file = first_file + chunk.len() - 1;
        let label = if count == 1 {
            partition.name.clone()
        } else if first_file == last_file {
            format!("{} file {first_file} of {}", partition.name, partition.files.len())
        } else {
            format!("{} files {first_file}-{last_file} of {}", partition.name, partition.files.len())
        };
        first_file = last_file + 1;
        tasks.push(TaskSpec { label, files: chunk, partitions: 1 });
    }
}

/// `specs` with every one-file task merged into a neighbour, for maps DuckDB cannot plan over a
/// single file (a one-file table stays one task).
pub fn at_least_two_files(specs: Vec<TaskSpec>) -> Vec<TaskSpec> {
    let mut out: Vec<TaskSpec> = Vec::with_capacity(specs.len());
    let mut carry: Option<TaskSpec> = None;
    for spec in specs {
        let spec = match carry.take() {
            Some(single) => single.merged(spec),
            None => spec,
        };
        if spec.files.len() >= 2 {
            out.push(spec);
        } else {
            carry = Some(spec);
        }
    }
    if let Some(single) = carry {
        match out.pop() {
            Some(last) => out.push(last.merged(single)),
            None => out.push(single),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition(name: &str, sizes: &[u64]) -> Partition {
        Partition {
            name: name.into(),
            values: vec![Some(name.into())],
            files: sizes
                .iter()
                .enumerate()
                .map(|(i, s)| FileEntry { path: format!("{name}/{i}.parquet"), size: *s })
                .collect(),
        }
    }

    #[test]
    fn one_task_per_partition_of_the_target_size() {
        let parts = [partition("d=1", &[100]), partition("d=2", &[100])];
        let tasks = pack(&parts.iter().collect::<Vec<_>>(), 100);
        assert_eq!(tasks.len(), 2);
        assert_eq!(tasks[0].label, "d=1");
    }

    #[test]
    fn one_file_tasks_merge_into_a_neighbour() {
        let spec = |label: &str, n: usize| TaskSpec {
            label: label.into(),
            files: (0..n).map(|i| FileEntry { path: format!("{label}/{i}"), size: 1 }).collect(),
            partitions: 1,
        };
        let merged = at_least_two_files(vec![spec("a", 1), spec("b", 1), spec("c", 3), spec("d", 1)]);
        let shape: Vec<(String, usize)> = merged.iter().map(|s| (s.label.clone(), s.files.len())).collect();
        assert_eq!(shape, vec![("a + b".to_string(), 2), ("c + d".to_string(), 4)]);
        assert_eq!(at_least_two_files(vec![spec("only", 1)]).len(), 1);
    }

    #[test]
    fn packs_small_partitions_and_splits_large_ones() {
        let parts = [
            partition("d=1", &[10]),
            partition("d=2", &[10]),
            partition("d=3", &[10]),
            partition("d=4", &[60, 60, 60]),
            partition("d=5", &[1]),
        ];
        let tasks = pack(&parts.iter().collect::<Vec<_>>(), 100);
        let labels: Vec<_> = tasks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(
            labels,
            vec!["d=1 .. d=3 (3 partitions)", "d=4 file 1 of 3", "d=4 file 2 of 3", "d=4 file 3 of 3", "d=5"]
        );
        assert_eq!(tasks[0].files.len(), 3);
        let files: usize = tasks.iter().map(|t| t.files.len()).sum();
        assert_eq!(files, 7, "every file is in exactly one task");
    }

    #[test]
    fn tasks_come_out_even_around_the_target() {
        let parts: Vec<Partition> = (0..9).map(|i| partition(&format!("d={i}"), &[10 + i % 2])).collect();
        let sizes: Vec<u64> = pack(&parts.iter().collect::<Vec<_>>(), 32).iter().map(|t| t.bytes()).collect();
        assert_eq!(sizes, vec![31, 32, 31], "no small remainder task");
    }

    #[test]
    fn a_single_huge_file_is_one_task() {
        let parts = [partition("d=1", &[10_000])];
        assert_eq!(pack(&parts.iter().collect::<Vec<_>>(), 100).len(), 1);
    }

    #[test]
    fn target_is_clamped() {
        assert_eq!(target_bytes(1000, 10, 1, 1_000_000), 100);
        assert_eq!(target_bytes(1000, 10, 500, 1_000_000), 500);
        assert_eq!(target_bytes(u64::MAX, 1, 1, 64), 64);
    }
}
