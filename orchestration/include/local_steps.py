"""The local target's steps: generator cycles for a simulated day, then the local loader sync."""
