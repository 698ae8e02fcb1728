"""The deploy rehearsal's helpers (tests/cloud/): the cloud as `cdk deploy` would create it, driven by the synthesized
templates, run against moto and local stand-ins. Reusable by any test of the tier (fixtures in tests/cloud/conftest.py).

- bundles      the host bundle (scripts/build_lambda.py --platform host), the shipped arm64 one
- assembly     synthesize the app into build/rehearsal/assembly-<name>-<digest>/ (cached) and read cdk.out
- intrinsics   Ref / Fn::GetAtt / Join / Sub / Select / Split / ImportValue / GetStackOutput resolver
- motoserver   moto in its own process (account of the templates)
- dataplane    CloudFormation properties -> boto3 calls creating the data plane in moto; roles with their policies
- opensearch   HTTPS stand-in recording requests, answering with tests/data/opensearch/ response shapes
- rekognition  the Glue tests' Rekognition stand-in, the functions' AWS_ENDPOINT_URL_REKOGNITION
- functions    a Lambda function as deployed: worker subprocess (worker.py) with only its staged code + stdlib
- needs        recorded AWS call -> IAM permissions it needs (incl. server-side KMS, event source polling)
- policy       offline IAM evaluator (identity and resource policies)
- stage        Rehearsal: everything above, the HTTP API as routed by its template, event source polling,
               deploy-time custom resources, the browser's side (presigned POST/GET)
- journey      steps shared by the journey tests
- glue_calls   the Glue jobs' AWS calls (glue_hook/sitecustomize.py puts worker.py's hook in every job process)
               checked against the job role's synthesized statements
- loopback     the HTTP API served on 127.0.0.1 for real HTTP clients (PhotoApiClient), event sources delivered
               between requests

Stand-ins and their limits (each test says which it relies on): S3 policy conditions and presigned POST policies are
not enforced by moto (bucket policies are kept aside, the POST policy is read back); moto has no Rekognition
collections (the functions reach the Rekognition stand-in); OpenSearch is answered with recorded response shapes;
moto's own IAM enforcement is off (see Rehearsal._enforce_iam) and the offline evaluator checks every call instead.
"""
