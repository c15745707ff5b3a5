"""Evidence: photos and documents attached to findings, their previews and resumable uploads."""
