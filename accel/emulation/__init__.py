"""Other targets run on this machine: AArch64 under qemu-user (an RPC device), OpenCL on PoCL."""
