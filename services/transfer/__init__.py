"""The transfer service: member-to-member message streams over mutual TLS, mailbox, control relay."""
