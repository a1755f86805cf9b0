"""Alert stage: findings → cases, the sense → dispatch → enforce workflow, audit, outbox.

Built in issue #4.
"""
