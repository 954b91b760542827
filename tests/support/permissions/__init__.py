"""The permission rehearsal's library: what each principal calls, and AWS's policy evaluation over the templates.

moto evaluates no policy. This package does, offline: the calls the runtime makes (recorded from the moto-server
runs, see ``recorder``) are catalogued in ``calls``, each is turned into the IAM requests AWS would authorize
(action, resource ARN, request context), and ``evaluation`` decides each request against the synthesized identity,
resource, key and endpoint policies.
"""
