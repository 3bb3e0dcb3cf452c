"""What a notification says and when it is worth sending. No I/O."""
