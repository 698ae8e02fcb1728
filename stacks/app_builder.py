"""Builds the stacks into an App; shared by app.py and the infrastructure tests."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from stacks.analysis import AnalysisStack
from stacks.api import ApiStack
from stacks.auth import AuthStack
from stacks.ingest import IngestStack
from stacks.ml import MlStack
from stacks.search import SearchStack
from stacks.settings import Settings
from stacks.storage import StorageStack
from stacks.web import WebStack


@dataclass(frozen=True)
class PhotoOrganizerStacks:
    settings: Settings
    storage: StorageStack
    auth: AuthStack
    ingest: IngestStack
    api: ApiStack
    search: SearchStack
    analysis: AnalysisStack
    ml: MlStack
    web: WebStack

    def all(self) -> list[cdk.Stack]:
        return [self.storage, self.auth, self.ingest, self.search, self.api, self.ml, self.analysis, self.web]


def build_app(app: cdk.App) -> PhotoOrganizerStacks:
    settings = Settings.from_context(app.node)
    env = cdk.Environment(account=settings.account, region=settings.region)

    def name(concern: str) -> str:
        return f"{settings.prefix}-{concern}"

    storage = StorageStack(app, name("storage"), settings=settings, env=env,
                           description="Photo Organizer: key, buckets and table")
    auth = AuthStack(app, name("auth"), settings=settings, env=env,
                     description="Photo Organizer: Cognito user pool and SPA client")
    ingest = IngestStack(app, name("ingest"), settings=settings, storage=storage.outputs, env=env,
                         description="Photo Organizer: upload events queue and validator")
    search = SearchStack(app, name("search"), settings=settings, storage=storage.outputs, env=env,
                         description=f"Photo Organizer: search index ({settings.search_engine}) and its indexer")
    api = ApiStack(app, name("api"), settings=settings, storage=storage.outputs, auth=auth.outputs,
                   search=search.outputs, env=env, description="Photo Organizer: HTTP API")
    ml = MlStack(app, settings.ml_stack_name, settings=settings, storage=storage.outputs,
                 access_logs_bucket_name=storage.access_logs.bucket_name,
                 env=env, description="Photo Organizer: feedback dataset, feedback function and retraining pipeline")
    ml.add_stack_dependency(api)  # deployed after the API, whose feedback routes write what it records
    analysis = AnalysisStack(app, name("analysis"), settings=settings, storage=storage.outputs, env=env,
                             description="Photo Organizer: Glue analysis and face clustering jobs")
    # After the stacks it reads from (API endpoint, Cognito client and domain, photo buckets); none reads from it.
    web = WebStack(app, name("web"), settings=settings, storage=storage.outputs, auth=auth.outputs,
                   api_url=api.api.api_endpoint, env=env,
                   description="Photo Organizer: web app in a private bucket behind CloudFront")

    for key, value in {"project": "photo-organizer", "app": settings.app_name, "stage": settings.stage}.items():
        cdk.Tags.of(app).add(key, value)
    cdk.Aspects.of(app).add(AwsSolutionsChecks(verbose=True))
    return PhotoOrganizerStacks(settings=settings, storage=storage, auth=auth, ingest=ingest, api=api,
                                search=search, analysis=analysis, ml=ml, web=web)
