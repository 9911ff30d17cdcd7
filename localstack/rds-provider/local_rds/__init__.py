"""A LocalStack `rds` provider whose PostgreSQL instances are real databases.

See localstack/README.md in the tenantd repository for the design and its costs.
"""
