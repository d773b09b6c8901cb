"""The planted-fault suite: each guarantee's test must fail when a fault breaks the guarantee."""
