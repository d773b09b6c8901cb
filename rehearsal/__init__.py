"""The cloud rehearsal: the stack's declared AWS resources in a local emulator, the hosts booted from their user data."""
