#!/usr/bin/env python3
"""CDK app: wires the four stacks with an explicit environment, so synth needs no AWS credentials."""

from __future__ import annotations

import aws_cdk as cdk

from stacks.app_builder import build_app

app = cdk.App()
build_app(app)
app.synth()
