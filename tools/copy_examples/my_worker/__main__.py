import os

print(f"my_worker would now drain {os.environ.get('QUEUE_URL')}")
