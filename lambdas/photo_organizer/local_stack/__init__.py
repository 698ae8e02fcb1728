"""The local backend's runtime: a gateway that speaks like API Gateway and S3, an event queue that speaks like
SQS, and an identity provider that signs tokens like Cognito. The Lambda handlers run unchanged behind it."""
