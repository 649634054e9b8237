"""The schema revisions, oldest first by `down_revision`; exactly one head."""
