#!/usr/bin/env python3
"""ops floor charm: the reads a converged Rust-charm hook makes, then a status."""
import ops


class Floor(ops.CharmBase):
    def __init__(self, framework):
        super().__init__(framework)
        for event in (
            self.on.install,
            self.on.start,
            self.on.config_changed,
            self.on.update_status,
            self.on.leader_elected,
            self.on.cluster_relation_joined,
            self.on.cluster_relation_changed,
            self.on.cluster_relation_departed,
        ):
            framework.observe(event, self._reconcile)

    def _reconcile(self, event):
        self.unit.is_leader()
        dict(self.config)
        rel = self.model.get_relation("cluster")
        if rel is not None:
            for unit in rel.units:
                dict(rel.data[unit])
            dict(rel.data[self.unit])
            dict(rel.data[self.app])
        self.unit.status = ops.ActiveStatus()


if __name__ == "__main__":
    ops.main(Floor)
