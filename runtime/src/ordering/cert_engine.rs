//! Certification on shard 0: one thread with one shard, or the fan-out to the shards owning
//! each key (verdicts never depend on the shard count).

use super::*;

/// Certification on shard 0: the single-thread facade with one shard, or the global part plus
/// slice 0 here and slices 1..N on their shards.
pub(super) enum CertEngine {
    Single(Certifier),
    Sharded {
        global: CertGlobal,
        slice0: CertSlice,
        partials: Vec<Partial>,
    },
}

impl CertEngine {
    pub(super) fn start(
        position: Seqno,
        links: &[ShardLink],
        config: CertConfig,
    ) -> Result<Self, CertError> {
        let shard_count = links.len() as u32 + 1;
        if shard_count == 1 {
            return Ok(CertEngine::Single(Certifier::new(1, position, config)?));
        }
        let global = CertGlobal::new(shard_count, position, config)?;
        let slice0 = CertSlice::new(0, shard_count)?;
        for link in links {
            link.send(ShardCommand::AttachCert {
                cert: CertSlice::new(link.index, shard_count)?,
            });
        }
        Ok(CertEngine::Sharded {
            global,
            slice0,
            partials: Vec::with_capacity(shard_count as usize),
        })
    }

    pub(super) fn certify(
        &mut self,
        links: &[ShardLink],
        seqno: Seqno,
        ws: &Arc<Writeset>,
    ) -> Result<CertVerdict, CertError> {
        let (global, slice0, partials) = match self {
            CertEngine::Single(certifier) => return certifier.certify(seqno, ws),
            CertEngine::Sharded {
                global,
                slice0,
                partials,
            } => (global, slice0, partials),
        };
        let input = CheckInput::new(seqno, ws);
        global.check_next(seqno)?;
        let shard_count = links.len() as u32 + 1;
        // Ask only the shards that own one of the keys; the others' answer is known.
        let mut touched = vec![false; shard_count as usize];
        for key in &ws.keys {
            touched[key.hash.shard(shard_count) as usize] = true;
        }
        for link in links.iter().filter(|l| touched[l.index as usize]) {
            link.send(ShardCommand::Check {
                seqno,
                ws: ws.clone(),
            });
        }
        partials.clear();
        partials.push(slice0.check(&input));
        for link in links {
            partials.push(match touched[link.index as usize] {
                true => link
                    .partial()
                    .unwrap_or_else(|| Partial::empty(link.index, seqno)),
                false => Partial::empty(link.index, seqno),
            });
        }
        let verdict = global.merge(&input, partials)?;
        slice0.apply(&input, &verdict);
        // Sent before the next Check: each shard records this verdict before it checks the
        // next writeset (its inbox is FIFO).
        for link in links.iter().filter(|l| touched[l.index as usize]) {
            link.send(ShardCommand::Apply {
                seqno,
                ws: ws.clone(),
                verdict,
            });
        }
        Ok(verdict)
    }

    pub(super) fn barrier(&mut self, seqno: Seqno) -> Result<(), CertError> {
        match self {
            CertEngine::Single(certifier) => certifier.certify_barrier(seqno),
            CertEngine::Sharded { global, .. } => global.barrier(seqno),
        }
    }

    /// The commit cut: forget every record at or below `cut`, everywhere.
    pub(super) fn purge_upto(&mut self, links: &[ShardLink], cut: Seqno) {
        let below = Seqno(cut.0.saturating_add(1));
        match self {
            CertEngine::Single(certifier) => certifier.purge_below(below),
            CertEngine::Sharded { global, slice0, .. } => {
                global.purge_below(below);
                slice0.purge_below(below);
                for link in links {
                    link.send(ShardCommand::Purge { below });
                }
            }
        }
    }

    /// The whole index now, gathered from every shard (a donor at the transfer point).
    pub(super) fn export(&self, links: &[ShardLink]) -> CertSnapshot {
        match self {
            CertEngine::Single(certifier) => certifier.export(),
            CertEngine::Sharded { global, slice0, .. } => {
                let mut records: Vec<SnapshotRecord> = Vec::new();
                slice0.export_into(&mut records);
                for link in links {
                    records.extend(link.export());
                }
                CertSnapshot::from_records(global, records)
            }
        }
    }

    /// Replaces the index with a donor's snapshot (a joiner).
    pub(super) fn import(&mut self, links: &[ShardLink], snapshot: &Arc<CertSnapshot>) {
        match self {
            CertEngine::Single(certifier) => certifier.import(snapshot),
            CertEngine::Sharded { global, slice0, .. } => {
                global.import(snapshot);
                slice0.import(snapshot);
                for link in links {
                    link.send(ShardCommand::Import {
                        snapshot: snapshot.clone(),
                    });
                }
            }
        }
    }

    /// Keys in the slice(s) this thread owns.
    pub(super) fn local_index_size(&self) -> usize {
        match self {
            CertEngine::Single(certifier) => certifier.index_size(),
            CertEngine::Sharded { slice0, .. } => slice0.key_count(),
        }
    }
}
