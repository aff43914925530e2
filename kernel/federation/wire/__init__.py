"""The protocol a task and the transfer services speak, in one place for both ends.

- `frames`: Frame messages as bytes (encode, parse without copying payloads), the chunk and
  frame limits, the message checksum;
- `messages`: what a message is (its key, its header's rules) and the checks of one
  message's chunk and end frames as they pass;
- `lane`: the records of the data lane between a task and its own member's service.

The kernel's client (`kernel.federation.cluster`, `kernel.federation.lane`) and the transfer
service (`services.transfer`) both import these modules; nothing here imports either.
"""
