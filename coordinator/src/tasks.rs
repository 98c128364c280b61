//! Packing partitions into tasks so workers get even work: one task per partition by default,
//! a partition larger than the target split by file, and small partitions packed together up to
//! the target. Files keep their order, so partials concatenate in the table's file order.
//!
//! Work is measured by [`FileCost`]: a file's bytes plus what opening it costs, counted as the
//! bytes read in the same time. On S3 every file costs a few requests of first-byte latency, so
//! 1,000 small objects are not one task of 1,000 sequential opens.

use crate::partitions::{FileEntry, Partition};

/// Default cost of opening an `s3://` (or other remote) file: DuckDB makes ~3 requests per
/// Parquet file (size, footer, row groups) at ~25 ms of first-byte latency each, in which a
/// Lambda worker reads ~8 MiB.
pub const REMOTE_FILE_OPEN_BYTES: u64 = 8 << 20;
/// Default cost of opening a local file (open, footer, metadata: ~0.1 ms at ~1 GB/s).
pub const LOCAL_FILE_OPEN_BYTES: u64 = 64 << 10;

/// What a file costs a task: its size plus the cost of opening it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileCost {
    /// The cost of one open, in bytes; `None`: by where the file is
    /// ([`REMOTE_FILE_OPEN_BYTES`] for URLs, [`LOCAL_FILE_OPEN_BYTES`] for paths).
    pub open_bytes: Option<u64>,
}

impl FileCost {
    /// The cost of `file`.
    pub fn of(&self, file: &FileEntry) -> u64 {
        let open = self.open_bytes.unwrap_or(if file.path.contains("://") {
            REMOTE_FILE_OPEN_BYTES
        } else {
            LOCAL_FILE_OPEN_BYTES
        });
        file.size.saturating_add(open)
    }

    /// The cost of `files`.
    pub fn of_files<'a>(&self, files: impl IntoIterator<Item = &'a FileEntry>) -> u64 {
        files.into_iter().fold(0u64, |sum, f| sum.saturating_add(self.of(f)))
    }
}

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

/// Target cost per task: the total ([`FileCost`]) spread over `slots` tasks (a few per worker),
/// clamped to `[min, max]`.
pub fn target_bytes(total: u64, slots: usize, min: u64, max: u64) -> u64 {
    (total / slots.max(1) as u64).clamp(min, max.max(min))
}

/// Packs `partitions` (in order) into tasks of about `target` each, as `cost` counts.
pub fn pack(partitions: &[&Partition], target: u64, cost: FileCost) -> Vec<TaskSpec> {
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
        let bytes = cost.of_files(&partition.files);
        if bytes > target && partition.files.len() > 1 {
            flush(&mut open, &mut open_bytes, &mut tasks);
            split_partition(partition, target, cost, &mut tasks);
            continue;
        }
        // Close the open task when this partition would take it further past the target than
        // stopping short does: tasks come out close to the target on both sides, so
        // total / target tasks of equal size, not n full ones and a small remainder.
        if !open.is_empty() && open_bytes.saturating_add(bytes / 2) > target {
            flush(&mut open, &mut open_bytes, &mut tasks);
        }
        open.push(partition);
        open_bytes = open_bytes.saturating_add(bytes);
    }
    flush(&mut open, &mut open_bytes, &mut tasks);
    tasks
}

/// As [`pack`], but no task holds files of two partitions: one task per partition (a partition
/// larger than `target` split by file). For maps DuckDB answers wrongly across partitions.
pub fn pack_apart(partitions: &[&Partition], target: u64, cost: FileCost) -> Vec<TaskSpec> {
    partitions.iter().flat_map(|partition| pack(&[*partition], target, cost)).collect()
}

fn split_partition(partition: &Partition, target: u64, cost: FileCost, tasks: &mut Vec<TaskSpec>) {
    let mut chunks: Vec<Vec<FileEntry>> = Vec::new();
    let mut bytes = 0u64;
    for file in &partition.files {
        let file_cost = cost.of(file);
        match chunks.last_mut() {
            Some(chunk) if bytes.saturating_add(file_cost) <= target => {
                chunk.push(file.clone());
                bytes += file_cost;
            }
            _ => {
                chunks.push(vec![file.clone()]);
                bytes = file_cost;
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

    /// Bytes only, as the tests before file costs were written.
    const BYTES: FileCost = FileCost { open_bytes: Some(0) };

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
    fn packing_apart_never_mixes_partitions() {
        let parts = [partition("d=1", &[10]), partition("d=2", &[10, 10]), partition("d=3", &[300, 300])];
        let tasks = pack_apart(&parts.iter().collect::<Vec<_>>(), 400, BYTES);
        let labels: Vec<&str> = tasks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels, ["d=1", "d=2", "d=3 file 1 of 2", "d=3 file 2 of 2"]);
        assert!(tasks.iter().all(|t| t.partitions == 1));
        assert_eq!(pack(&parts.iter().collect::<Vec<_>>(), 400, BYTES).len(), 3, "pack itself mixes d=1 and d=2");
    }

    #[test]
    fn one_task_per_partition_of_the_target_size() {
        let parts = [partition("d=1", &[100]), partition("d=2", &[100])];
        let tasks = pack(&parts.iter().collect::<Vec<_>>(), 100, BYTES);
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
        let tasks = pack(&parts.iter().collect::<Vec<_>>(), 100, BYTES);
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
        let sizes: Vec<u64> = pack(&parts.iter().collect::<Vec<_>>(), 32, BYTES).iter().map(|t| t.bytes()).collect();
        assert_eq!(sizes, vec![31, 32, 31], "no small remainder task");
    }

    #[test]
    fn a_single_huge_file_is_one_task() {
        let parts = [partition("d=1", &[10_000])];
        assert_eq!(pack(&parts.iter().collect::<Vec<_>>(), 100, BYTES).len(), 1);
    }

    #[test]
    fn many_small_remote_files_are_spread_by_their_open_cost() {
        // 1,000 objects of 1 KiB on S3: by bytes alone (1 MiB in all) they are one task of 1,000
        // sequential opens; with the open cost, tasks of about 32 files each.
        let files: Vec<FileEntry> =
            (0..1000).map(|i| FileEntry { path: format!("s3://b/t/d=1/{i:04}.parquet"), size: 1024 }).collect();
        let parts = [Partition { name: "d=1".into(), values: vec![Some("1".into())], files }];
        let cost = FileCost::default();
        let total = cost.of_files(&parts[0].files);
        let target = target_bytes(total, 8, 1 << 20, 256 << 20);
        assert_eq!(target, 256 << 20, "the total cost is ~8 GB: the target hits its ceiling");
        let tasks = pack(&parts.iter().collect::<Vec<_>>(), target, cost);
        // 31 files of 8 MiB + 1 KiB fit in 256 MiB: 32 tasks of 31 and one of 8.
        assert_eq!(tasks.len(), 33);
        assert!(tasks[..32].iter().all(|t| t.files.len() == 31));
        assert_eq!(tasks.iter().map(|t| t.files.len()).sum::<usize>(), 1000);
        // By bytes only, the same files are one task.
        let target = target_bytes(1000 * 1024, 8, 1 << 20, 256 << 20);
        assert_eq!(pack(&parts.iter().collect::<Vec<_>>(), target, BYTES).len(), 1);
    }

    #[test]
    fn local_files_cost_less_to_open_than_remote_ones() {
        let local = FileEntry { path: "/lake/t/d=1/a.parquet".into(), size: 10 };
        let remote = FileEntry { path: "s3://lake/t/d=1/a.parquet".into(), size: 10 };
        let cost = FileCost::default();
        assert_eq!(cost.of(&local), 10 + LOCAL_FILE_OPEN_BYTES);
        assert_eq!(cost.of(&remote), 10 + REMOTE_FILE_OPEN_BYTES);
        assert_eq!(FileCost { open_bytes: Some(5) }.of(&remote), 15);
        let huge = FileEntry { path: "x".into(), size: u64::MAX };
        assert_eq!(cost.of(&huge), u64::MAX, "saturates");
    }

    #[test]
    fn target_is_clamped() {
        assert_eq!(target_bytes(1000, 10, 1, 1_000_000), 100);
        assert_eq!(target_bytes(1000, 10, 500, 1_000_000), 500);
        assert_eq!(target_bytes(u64::MAX, 1, 1, 64), 64);
    }
}
