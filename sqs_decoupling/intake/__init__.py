"""The upload intake: the buckets, the S3 event notification that turns an upload into a job, and the access a
video consumer needs to the buckets."""
