"""One Lambda function as deployed, in a long-lived subprocess: `python -I -S worker.py CODE_DIR HANDLER`.

Started by rehearsal.functions with `-I -S`: sys.path holds the standard library and CODE_DIR only (the staged asset
directory `cdk deploy` would zip), never the test venv, so a module missing from the bundle fails here as it would
in Lambda. The environment is the function's template environment (resolved) plus what the Lambda runtime sets,
AWS_ENDPOINT_URL (moto) and the credentials of the function's role.

Test-harness stand-ins, each the minimum to run outside AWS, none touching the code under test:
- DNS: names under .localhost resolve to 127.0.0.1 (S3 virtual-hosted addressing: <bucket>.localhost).
- every botocore client gets a `before-parameter-build` hook that records service, signing name, operation and
  parameters of each call (the API parameters are what names the resource an IAM statement must allow);
  presigned URLs and POSTs are recorded too (S3 checks the signer's permissions when the browser uses them).

Protocol: one JSON object per line. Requests on stdin: {"event": ...}. Answers on the original stdout (fd 1 is
then pointed at stderr, so the function's own logs go there): first {"ready": true} or {"init_error": ...},
then per event {"result": ..., "error": ..., "calls": [...]}.
"""

import json
import os
import sys
import time
import traceback
import uuid


def _protocol_channel():
    channel = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # print() and loggers of the function go to stderr
    sys.stdout = os.fdopen(1, "w", buffering=1)
    return channel


def _dns_stand_in():
    import socket

    original = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if isinstance(host, str) and host.endswith(".localhost"):
            host = "127.0.0.1"
        return original(host, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo


CALLS = []
SIGNING_POST = []  # non-empty while botocore builds a presigned POST (it serializes a CreateBucket to get the URL)


def _plain(value, depth=0):
    if isinstance(value, dict):
        return {str(k): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, depth + 1) for v in value[:200]]
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "read"):
        return "<stream>"
    return str(value)


def _install_recorder():
    import botocore.client
    import botocore.signers

    def record(params, model, **_):
        if SIGNING_POST:
            return
        service = model.service_model
        CALLS.append({"service": service.service_name, "signing_name": service.signing_name,
                      "operation": model.name, "params": _plain(params)})

    create_client = botocore.client.ClientCreator.create_client

    def create_client_recording(self, *args, **kwargs):
        client = create_client(self, *args, **kwargs)
        client.meta.events.register("before-parameter-build", record)
        return client

    botocore.client.ClientCreator.create_client = create_client_recording

    presigned_url = botocore.signers.generate_presigned_url
    presigned_post = botocore.signers.generate_presigned_post

    def generate_presigned_url(self, ClientMethod, Params=None, *args, **kwargs):
        operation = self._PY_TO_OP_NAME.get(ClientMethod, ClientMethod)
        service = self.meta.service_model
        CALLS.append({"service": service.service_name, "signing_name": service.signing_name,
                      "operation": operation, "params": _plain(Params or {}), "presigned": "url"})
        return presigned_url(self, ClientMethod, Params, *args, **kwargs)

    def generate_presigned_post(self, Bucket, Key, *args, **kwargs):
        service = self.meta.service_model
        CALLS.append({"service": service.service_name, "signing_name": service.signing_name,
                      "operation": "PutObject", "params": {"Bucket": Bucket, "Key": Key}, "presigned": "post"})
        SIGNING_POST.append(True)
        try:
            return presigned_post(self, Bucket, Key, *args, **kwargs)
        finally:
            SIGNING_POST.pop()

    botocore.signers.generate_presigned_url = generate_presigned_url
    botocore.signers.generate_presigned_post = generate_presigned_post


class LambdaContext:
    def __init__(self):
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        region, account = os.environ["AWS_REGION"], os.environ.get("REHEARSAL_ACCOUNT", "000000000000")
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{account}:function:{self.function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = "rehearsal"
        self._deadline = time.monotonic() + float(os.environ.get("REHEARSAL_TIMEOUT_SECONDS", "60"))

    def get_remaining_time_in_millis(self):
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def main(code_dir, handler_name):
    channel = _protocol_channel()
    sys.path.insert(0, code_dir)
    try:
        _dns_stand_in()
        _install_recorder()
        module_name, function_name = handler_name.rsplit(".", 1)
        import importlib

        handler = getattr(importlib.import_module(module_name), function_name)
    except BaseException as exc:  # an import error here is a packaging miss
        channel.write(json.dumps({"init_error": {"type": type(exc).__name__, "message": str(exc),
                                                 "traceback": traceback.format_exc()}}) + "\n")
        return 1
    channel.write(json.dumps({"ready": True, "sys_path": sys.path}) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        del CALLS[:]
        answer = {"result": None, "error": None}
        try:
            answer["result"] = handler(request["event"], LambdaContext())
        except BaseException as exc:
            answer["error"] = {"type": type(exc).__name__, "message": str(exc), "traceback": traceback.format_exc()}
        answer["calls"] = list(CALLS)
        channel.write(json.dumps(answer, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
