"""Use cases. Services see ports only; they never import boto3 or an adapter."""
