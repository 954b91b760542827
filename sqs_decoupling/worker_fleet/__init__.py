"""The EC2 worker fleet: the Auto Scaling group, its network, queue-depth scaling, warm pool and user data, and
worker/ (the queue worker it runs, also on premises)."""
