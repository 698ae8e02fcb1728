"""SearchStack: the OpenSearch index (a domain, or a Serverless collection) and the indexer fed by the table stream.

Cost, approximate (us-east-1 list prices at the time of writing; check the pricing pages before deciding):
- domain, t3.small.search x 1 ($0.036/h, about $26 a month) + 10 GB gp3 (about $1): roughly $27 a month, idle or not;
- Serverless: billed per OCU-hour (about $0.24); the floor is 1 OCU (0.5 indexing + 0.5 search) without standby
  replicas (the default here), about $175 a month, and 2 OCUs, about $350, with them
  (opensearch_serverless_standby_replicas=true).
So the domain is the default; Serverless trades that floor for no capacity planning.

Serverless is a SEARCH collection, so search there is keyword-only (a product decision). The indexer writes
each photo under our own id (`{owner}#{photo_id}`) with an external version, so a late stream record never
overwrites newer data and a delete reaches the photo's document. AWS documents that VECTORSEARCH (and
TIMESERIES) collections use server-generated ids and accept `_create/<id>`, `_update/<id>` and `PUT _doc/<id>`
on SEARCH collections only; knn_vector fields, though, need VECTORSEARCH. Ids win: on Serverless the adapter
maps no vectors and sends no knn, and the API reports semantic "off". Semantic search wants the domain.
Settings refuse VECTORSEARCH. Not verified without a live collection: that a SEARCH collection honours
`version_type=external` on bulk writes, and index aliases (reindex swaps one); see opensearch_index.py.
"""

from __future__ import annotations

from aws_cdk import CfnOutput, CustomResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_opensearchserverless as aoss
from aws_cdk import aws_opensearchservice as opensearch
from aws_cdk import aws_sqs as sqs
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from stacks.monitoring import FIVE_MINUTES, alarm_above_zero, notify
from stacks.settings import Settings
from stacks.shared import (
    PhotoOrganizerFunction,
    SearchOutputs,
    StorageOutputs,
    app_log_group,
    common_environment,
    suppress,
    suppress_grant_wildcards,
)

INDEXER_HANDLER = "photo_organizer.handlers.indexer.handler"
SEARCH_ACCESS_HANDLER = "photo_organizer.handlers.opensearch_security.handler"
SEARCH_ACCESS_RESOURCE_TYPE = "Custom::OpenSearchAccess"
SEARCH_ALIAS = "photos"
# The index the deployment creates behind the alias (`photos-v1`); later versions come from `search reindex`.
SEARCH_INDEX_VERSION = 1
INDEXER_ES_ACTIONS = ("es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPost", "es:ESHttpPut", "es:ESHttpDelete")
READER_ES_ACTIONS = ("es:ESHttpGet", "es:ESHttpPost")  # searches with a body are POSTs
# The domain's access policy lets the account's IAM policies decide who reaches the domain (each role's own
# policy grants its es:ESHttp* methods), then fine-grained access control decides what each may do inside.
DOMAIN_POLICY_ES_ACTIONS = (*INDEXER_ES_ACTIONS, "es:ESHttpPatch")
AOSS_ACTIONS = ("aoss:APIAccessAll",)  # the data access policy decides what each role may do inside


class SearchStack(Stack):
    def __init__(self, scope: Construct, id: str, *, settings: Settings, storage: StorageOutputs, **kwargs) -> None:
        super().__init__(scope, id, **kwargs)
        self._settings = settings
        self._storage = storage
        serverless = settings.search_engine == "serverless"

        failures = sqs.Queue(
            self, "IndexerFailures",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=storage.key,
            data_key_reuse=Duration.hours(1),
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        suppress(failures, ("AwsSolutions-SQS3", "This queue is itself the failure destination of the indexer's "
                                                 "stream mapping; its depth is alarmed on instead."))

        indexer = PhotoOrganizerFunction(
            self, "Indexer",
            settings=settings, storage=storage, handler=INDEXER_HANDLER, log_name="indexer",
            memory_mb=settings.indexer_memory_mb, timeout_seconds=settings.indexer_timeout_seconds,
            environment=common_environment(settings, storage),
            description="Keeps the search index in step with the table (DynamoDB stream -> OpenSearch bulk)",
            failure_path=("the table stream's event source mapping calls it synchronously; records it gives up on "
                          "(bisected, retried, then aged out) go to the IndexerFailures on-failure destination."),
        )
        self.indexer = indexer

        if serverless:
            self.outputs = self._collection(indexer.role)
        else:
            self.outputs = self._domain(indexer.role)
        for name, value in search_environment(self.outputs).items():
            indexer.function.add_environment(name, value)

        # A failed batch is split in halves until the bad record is alone (bisect), retried up to the limit,
        # then its stream coordinates go to the failure queue; the reconcile command repairs from the table.
        lambda_.EventSourceMapping(
            self, "TableStream",
            target=indexer.function,
            event_source_arn=storage.table.table_stream_arn,
            starting_position=lambda_.StartingPosition.TRIM_HORIZON,
            batch_size=settings.indexer_batch_size,
            bisect_batch_on_error=True,
            retry_attempts=settings.indexer_retry_attempts,
            max_record_age=Duration.seconds(settings.indexer_max_record_age_seconds),
            report_batch_item_failures=True,
            on_failure=event_sources.SqsDlq(failures),
        )
        storage.table.grant_stream_read(indexer.function)
        storage.table.grant_read_data(indexer.function)  # documents are rebuilt from the item, not the image alone
        storage.key.grant_encrypt_decrypt(indexer.function)  # stream records, failure queue
        indexer.role.add_to_principal_policy(iam.PolicyStatement(
            actions=list(AOSS_ACTIONS if serverless else INDEXER_ES_ACTIONS),
            resources=[self.outputs.resource_arn, *self.outputs.reader_resources],
        ))
        suppress_grant_wildcards(indexer.role)
        if not serverless:
            suppress_search_wildcards(indexer.role, self.outputs, "The indexer writes documents, templates and "
                                      "aliases anywhere inside our one search domain")

        failures_alarm = alarm_above_zero(
            self, "IndexerFailuresAlarm", topic=storage.alarm_topic,
            description="Stream records the indexer gave up on: run the reconcile command",
            metric=failures.metric_approximate_number_of_messages_visible(period=FIVE_MINUTES, statistic="Maximum"),
        )
        errors_alarm = alarm_above_zero(
            self, "IndexerErrorsAlarm", topic=storage.alarm_topic,
            description="The indexer function failed (it is retried; persistent errors fill the failure queue)",
            metric=indexer.function.metric_errors(period=FIVE_MINUTES, statistic="Sum"),
        )

        CfnOutput(self, "SearchEndpoint", value=self.outputs.endpoint_url)
        CfnOutput(self, "IndexerFunctionName", value=indexer.function.function_name)
        CfnOutput(self, "IndexerFailuresQueueUrl", value=failures.queue_url)
        CfnOutput(self, "IndexerFailuresAlarmName", value=failures_alarm.alarm_name)
        CfnOutput(self, "IndexerErrorsAlarmName", value=errors_alarm.alarm_name)

    def _log_group(self, id: str, name: str) -> logs.LogGroup:
        return app_log_group(self, id, settings=self._settings, key=self._storage.key, name=f"opensearch/{name}")

    def _domain(self, indexer_role: iam.IRole) -> SearchOutputs:
        settings, storage = self._settings, self._storage
        domain_arn = settings.search_domain_arn()
        slow_search = self._log_group("SlowSearchLogs", "slow-search")
        slow_index = self._log_group("SlowIndexLogs", "slow-index")
        app_logs = self._log_group("AppLogs", "application")
        # Fine-grained access control's audit log (failed logins, privilege denials): who was refused what, with
        # the role of the request, which the other logs do not say.
        audit_logs = self._log_group("AuditLogs", "audit")
        # Our own logs resource policy instead of the construct's, which is a custom resource (a Lambda with
        # an unscoped role); this one lets only our domain write, and only into these four groups.
        logs_policy = logs.CfnResourcePolicy(
            self, "OpenSearchLogsPolicy",
            policy_name=f"{settings.prefix}-opensearch-logs",
            policy_document=self.to_json_string({
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": "Allow",
                    "Principal": {"Service": "es.amazonaws.com"},
                    "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                    "Resource": [group.log_group_arn for group in (slow_search, slow_index, app_logs, audit_logs)],
                    "Condition": {"StringEquals": {"aws:SourceAccount": settings.account},
                                  "ArnLike": {"aws:SourceArn": domain_arn}},
                }],
            }),
        )
        # The master user of fine-grained access control: the role of the deploy-time custom resource only, which
        # maps every other role to an OpenSearch role (writer for the indexer here, reader for the API in its stack).
        admin = PhotoOrganizerFunction(
            self, "SearchAccess",
            settings=settings, storage=storage, handler=SEARCH_ACCESS_HANDLER, log_name="search-access",
            memory_mb=256, timeout_seconds=300, environment={},
            description="Deploy time: OpenSearch role mappings (fine-grained access control) and the photo index",
            failure_path=("CloudFormation's custom resource (Custom::OpenSearchAccess) invokes it and waits for its "
                          "answer; a failure fails and rolls back the deploy, and a DLQ would keep a request that "
                          "nobody can answer any more."),
        )
        admin.role.add_to_principal_policy(iam.PolicyStatement(
            actions=list(INDEXER_ES_ACTIONS), resources=[f"{domain_arn}/*"]))
        suppress_grant_wildcards(admin.role)  # X-Ray's Resource::* of active tracing
        suppress_search_wildcards(admin.role, _domain_outputs("", domain_arn, None),
                                  "The master user of fine-grained access control manages roles and the index")
        self.search_access_function = admin.function
        masters = settings.opensearch_dedicated_master_count
        data_nodes = settings.opensearch_instance_count
        zones = 3 if data_nodes % 3 == 0 else 2
        domain = opensearch.Domain(
            self, "Domain",
            domain_name=settings.search_domain_name,
            version=opensearch.EngineVersion.open_search(settings.opensearch_version),
            # Dev default: one t3.small.search node. Production wants 3 AZs with dedicated masters
            # (opensearch_instance_count=3, opensearch_dedicated_master_count=3) and a larger instance type.
            capacity=opensearch.CapacityConfig(
                data_node_instance_type=settings.opensearch_instance_type,
                data_nodes=data_nodes,
                master_nodes=masters or None,
                master_node_instance_type=settings.opensearch_dedicated_master_type if masters else None,
                multi_az_with_standby_enabled=False,  # needs 3 AZs, dedicated masters and no T3; opt in explicitly
            ),
            zone_awareness=opensearch.ZoneAwarenessConfig(enabled=data_nodes > 1,
                                                          availability_zone_count=zones if data_nodes > 1 else None),
            ebs=opensearch.EbsOptions(volume_size=settings.opensearch_volume_gb,
                                      volume_type=ec2.EbsDeviceVolumeType.GP3),
            encryption_at_rest=opensearch.EncryptionAtRestOptions(enabled=True, kms_key=storage.key),
            node_to_node_encryption=True,
            enforce_https=True,
            tls_security_policy=opensearch.TLSSecurityPolicy.TLS_1_2_PFS,
            # IAM master role = the access custom resource's: no internal user database, no password anywhere.
            fine_grained_access_control=opensearch.AdvancedSecurityOptions(master_user_arn=admin.role.role_arn),
            logging=opensearch.LoggingOptions(
                slow_search_log_enabled=True, slow_search_log_group=slow_search,
                slow_index_log_enabled=True, slow_index_log_group=slow_index,
                app_log_enabled=True, app_log_group=app_logs,
                audit_log_enabled=True, audit_log_group=audit_logs,
            ),
            suppress_logs_resource_policy=True,
            # The domain's name is fixed (the logs policy names it): a domain retained by the rollback of a failed
            # first deploy would block every retry, so retain applies to updates and deletes only.
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE if settings.retain else RemovalPolicy.DESTROY,
        )
        domain.node.add_dependency(logs_policy)
        # Set on the resource itself: the construct's access_policies prop goes through a custom resource.
        # The principal is this account, never a role: OpenSearch refuses a policy naming a principal that does not
        # exist yet, and the API role is created by a later stack. Who may call the domain is then decided by each
        # role's IAM policy (signed requests only), and what it may do inside by fine-grained access control.
        cfn_domain: opensearch.CfnDomain = domain.node.default_child
        cfn_domain.access_policies = {
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "AccountIamPolicies", "Effect": "Allow",
                 "Principal": {"AWS": f"arn:aws:iam::{settings.account}:root"},
                 "Action": list(DOMAIN_POLICY_ES_ACTIONS), "Resource": f"{domain_arn}/*"},
            ],
        }
        vpc_reason = ("The functions that use the domain run outside a VPC (no NAT/endpoint cost for a photo app); "
                      "every request must be SigV4-signed by a role of this account whose IAM policy allows it, and "
                      "is then checked by fine-grained access control (role mappings made at deploy time).")
        findings = [("AwsSolutions-OS1", vpc_reason), ("AwsSolutions-OS3", vpc_reason)]
        if not masters:
            findings.append(("AwsSolutions-OS4", "Dev sizing from cdk.json: no dedicated master nodes; production sets "
                                                 "opensearch_dedicated_master_count=3."))
        if data_nodes == 1:
            findings.append(("AwsSolutions-OS7", "Dev sizing from cdk.json: a single data node cannot span zones; "
                                                 "production sets opensearch_instance_count to 2 or 3."))
        suppress(domain, *findings)
        self._domain_alarms(domain)
        outputs = _domain_outputs(f"https://{domain.domain_endpoint}", domain_arn, admin.function.function_arn)
        # The indexer's OpenSearch role, and the index behind the alias before the first stream record arrives
        # (a bulk write to a missing alias would create a plain index named like the alias, with guessed mappings).
        search_access(self, "IndexerSearchAccess", outputs, access="writer",
                      roles=[indexer_role.role_arn, *settings.search_operator_role_arns],
                      index_version=SEARCH_INDEX_VERSION)
        return outputs

    def _domain_alarms(self, domain: opensearch.Domain) -> None:
        """Cluster health and disk, as AWS recommends for OpenSearch Service domains (1-minute metrics)."""
        settings, topic = self._settings, self._storage.alarm_topic
        minute = Duration.minutes(1)
        alarms = [cloudwatch.Alarm(
            self, "ClusterRedAlarm",
            alarm_description="A primary shard is unassigned: searches miss photos and writes to it fail",
            metric=domain.metric_cluster_status_red(period=minute, statistic="Maximum"),
            threshold=1, evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        ), cloudwatch.Alarm(
            self, "FreeStorageAlarm",
            alarm_description=f"A data node has 25% or less of its {settings.opensearch_volume_gb} GB left "
                              "(OpenSearch blocks writes at its flood-stage watermark)",
            metric=domain.metric_free_storage_space(period=minute, statistic="Minimum"),  # MiB, per node
            threshold=settings.opensearch_volume_gb * 1024 * 0.25, evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.MISSING,
        )]
        # Every domain, one data node included: the index auto-expands 0-1 replicas (opensearch_mapping.json), so a
        # single node is green and yellow means what it says. Five minutes: a new index is briefly yellow while its
        # replicas are allocated.
        alarms.append(cloudwatch.Alarm(
            self, "ClusterYellowAlarm",
            alarm_description="A replica shard is unassigned: one more node failure loses search data",
            metric=domain.metric_cluster_status_yellow(period=minute, statistic="Maximum"),
            threshold=1, evaluation_periods=5,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        ))
        notify(topic, *alarms)

    def _collection(self, indexer_role: iam.IRole) -> SearchOutputs:
        settings, storage = self._settings, self._storage
        name = settings.search_collection_name
        collection_rule = {"ResourceType": "collection", "Resource": [f"collection/{name}"]}
        encryption = aoss.CfnSecurityPolicy(
            self, "CollectionEncryption", name=f"{name}-enc", type="encryption",
            policy=self.to_json_string({"Rules": [collection_rule], "AWSOwnedKey": False, "KmsARN": storage.key.key_arn}),
        )
        # Public endpoint, as for the domain: nothing is served without a SigV4 signature of an allowed role.
        network = aoss.CfnSecurityPolicy(
            self, "CollectionNetwork", name=f"{name}-net", type="network",
            policy=self.to_json_string([{"Rules": [collection_rule], "AllowFromPublic": True}]),
        )
        indexes = {"ResourceType": "index", "Resource": [f"index/{name}/*"]}
        # The indexer's rules only: the API role is created by a later stack, which adds its own read-only policy
        # (stacks/api.py), so this stack names no principal that does not exist yet.
        aoss.CfnAccessPolicy(
            self, "CollectionDataAccess", name=f"{name}-acc", type="data",
            policy=self.to_json_string([
                {"Description": "indexer: templates, indexes, aliases and documents",
                 "Principal": [indexer_role.role_arn],
                 "Rules": [
                     {**indexes, "Permission": ["aoss:CreateIndex", "aoss:UpdateIndex", "aoss:DescribeIndex",
                                                "aoss:DeleteIndex", "aoss:ReadDocument", "aoss:WriteDocument"]},
                     {**collection_rule, "Permission": ["aoss:CreateCollectionItems", "aoss:UpdateCollectionItems",
                                                        "aoss:DescribeCollectionItems"]},
                 ]},
            ]),
        )
        # SEARCH, never VECTORSEARCH (settings refuse it): only SEARCH keeps our document ids (module docstring).
        collection = aoss.CfnCollection(
            self, "Collection", name=name, type=settings.opensearch_serverless_type,
            standby_replicas="ENABLED" if settings.opensearch_serverless_standby_replicas else "DISABLED",
            description="Photo Organizer search index",
        )
        collection.add_dependency(encryption)
        collection.add_dependency(network)
        return SearchOutputs(
            endpoint_url=collection.attr_collection_endpoint,
            service="aoss",
            alias=SEARCH_ALIAS,
            resource_arn=collection.attr_arn,
            reader_actions=AOSS_ACTIONS,
            reader_resources=(),
            collection_name=name,
        )


def _domain_outputs(endpoint_url: str, domain_arn: str, access_function_arn: str | None) -> SearchOutputs:
    return SearchOutputs(
        endpoint_url=endpoint_url,
        service="es",
        alias=SEARCH_ALIAS,
        resource_arn=domain_arn,
        reader_actions=READER_ES_ACTIONS,
        reader_resources=(f"{domain_arn}/*",),
        access_function_arn=access_function_arn,
    )


def search_access(scope: Construct, id: str, search: SearchOutputs, *, access: str, roles: list[str],
                  index_version: int | None = None) -> CustomResource:
    """Maps IAM roles to the writer or reader OpenSearch role of the domain (handlers/opensearch_security.py).
    Create it in the stack that creates the roles (or a later one), never in an earlier stack."""
    properties = {"Endpoint": search.endpoint_url, "Alias": search.alias, "Access": access, "BackendRoles": roles}
    if index_version is not None:
        properties["IndexVersion"] = str(index_version)
    return CustomResource(scope, id, service_token=search.access_function_arn,
                          resource_type=SEARCH_ACCESS_RESOURCE_TYPE, properties=properties)


def serverless_reader_policy(scope: Construct, id: str, search: SearchOutputs, role: iam.IRole) -> aoss.CfnAccessPolicy:
    """The API role's read-only data access policy of the collection, in the stack that creates the role."""
    name = search.collection_name
    return aoss.CfnAccessPolicy(
        scope, id, name=f"{name}-api", type="data",
        description="search API: read only",
        policy=Stack.of(scope).to_json_string([
            {"Description": "search API: read only",
             "Principal": [role.role_arn],
             "Rules": [{"ResourceType": "index", "Resource": [f"index/{name}/*"],
                        "Permission": ["aoss:ReadDocument", "aoss:DescribeIndex"]}]},
        ]),
    )


def suppress_search_wildcards(role: iam.IRole, search: SearchOutputs, who: str) -> None:
    NagSuppressions.add_resource_suppressions(role, [NagPackSuppression(
        id="AwsSolutions-IAM5",
        reason=f"{who}: the paths under the domain ARN (index names, _search, _bulk, _aliases) are request "
               "paths, not resources known at deploy time; the domain is ours alone.",
        applies_to=[f"Resource::{arn}" for arn in search.reader_resources],
    )], apply_to_children=True)


def search_environment(search: SearchOutputs) -> dict[str, str]:
    """What the OpenSearch adapter reads (indexer and API alike)."""
    return {
        "PO_OPENSEARCH_ENDPOINT": search.endpoint_url,
        "PO_OPENSEARCH_ALIAS": search.alias,
        "PO_OPENSEARCH_SERVICE": search.service,
    }
