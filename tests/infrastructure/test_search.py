from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Annotations, Match

pytestmark = pytest.mark.infrastructure

CONCERNS = ("storage", "auth", "ingest", "search", "api", "analysis", "ml")
DOMAIN_ARN = "arn:aws:es:eu-west-1:111111111111:domain/photo-organizer-dev-search"
ACCOUNT_ROOT = "arn:aws:iam::111111111111:root"


def _domain(synthesized) -> dict:
    domains = synthesized.template("search").find_resources("AWS::OpenSearchService::Domain")
    assert len(domains) == 1
    return next(iter(domains.values()))["Properties"]


def test_domain_is_small_encrypted_with_the_cmk_and_https_only(synthesized):
    settings = synthesized.stacks.settings
    domain = _domain(synthesized)
    assert domain["DomainName"] == "photo-organizer-dev-search"
    assert domain["EngineVersion"] == f"OpenSearch_{settings.opensearch_version}"
    assert domain["ClusterConfig"]["InstanceType"] == settings.opensearch_instance_type == "t3.small.search"
    assert domain["ClusterConfig"]["InstanceCount"] == settings.opensearch_instance_count == 1
    assert domain["EBSOptions"] == {"EBSEnabled": True, "VolumeSize": 10, "VolumeType": "gp3"}
    assert domain["EncryptionAtRestOptions"]["Enabled"] is True
    assert "DataKey" in str(domain["EncryptionAtRestOptions"]["KmsKeyId"])
    assert domain["NodeToNodeEncryptionOptions"] == {"Enabled": True}
    assert domain["DomainEndpointOptions"]["EnforceHTTPS"] is True
    assert domain["DomainEndpointOptions"]["TLSSecurityPolicy"].startswith("Policy-Min-TLS-1-2")


def test_fine_grained_access_control_master_is_the_access_custom_resource_role_and_no_password(synthesized):
    template = synthesized.template("search")
    options = _domain(synthesized)["AdvancedSecurityOptions"]
    assert options["Enabled"] is True and options["InternalUserDatabaseEnabled"] is False
    master = options["MasterUserOptions"]["MasterUserARN"]["Fn::GetAtt"][0]
    assert master.startswith("SearchAccessRole")
    functions = template.find_resources("AWS::Lambda::Function", {"Properties": {
        "Handler": "photo_organizer.handlers.opensearch_security.handler"}})
    [access_function] = functions.values()
    assert access_function["Properties"]["Role"] == {"Fn::GetAtt": [master, "Arn"]}
    assert "MasterUserPassword" not in str(options)
    assert not template.find_resources("AWS::SecretsManager::Secret")


def test_access_policy_names_the_account_never_a_role_so_no_later_stack_is_needed(synthesized):
    """OpenSearch refuses an access policy whose principal does not exist: the API role is created by the later
    API stack, so the policy names the account and the roles' own IAM policies (then FGAC) decide."""
    statements = _domain(synthesized)["AccessPolicies"]["Statement"]
    assert [s["Principal"] for s in statements] == [{"AWS": ACCOUNT_ROOT}]
    assert all(s["Resource"] == f"{DOMAIN_ARN}/*" and s["Effect"] == "Allow" for s in statements)
    assert set(statements[0]["Action"]) <= {"es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPost", "es:ESHttpPut",
                                            "es:ESHttpDelete", "es:ESHttpPatch"}
    template_text = json.dumps(synthesized.template_json("search"))
    assert ":role/" not in template_text, "the search stack names no role by ARN (roles are referenced)"
    assert "PO_OPENSEARCH_READER_ROLE_ARN" not in json.dumps([synthesized.template_json(c) for c in CONCERNS])


def _access_resources(synthesized, concern: str) -> list[dict]:
    return [r["Properties"] for r in synthesized.template(concern).find_resources("Custom::OpenSearchAccess").values()]


def test_role_mappings_are_made_at_deploy_time_each_in_the_stack_that_creates_the_role(synthesized):
    """writer -> the indexer (search stack, which also creates the index behind the alias); reader -> the API role
    (API stack). Both are served by the search stack's access function."""
    [writer] = _access_resources(synthesized, "search")
    assert writer["Access"] == "writer" and writer["Alias"] == "photos" and writer["IndexVersion"] == "1"
    assert [r["Fn::GetAtt"][0] for r in writer["BackendRoles"]] == [
        lid for lid in synthesized.template_json("search")["Resources"] if lid.startswith("IndexerRole")
        and synthesized.template_json("search")["Resources"][lid]["Type"] == "AWS::IAM::Role"]
    assert writer["ServiceToken"]["Fn::GetAtt"][0].startswith("SearchAccessFunction")
    assert "DomainEndpoint" in json.dumps(writer["Endpoint"])
    [reader] = _access_resources(synthesized, "api")
    assert reader["Access"] == "reader" and reader["Alias"] == "photos" and "IndexVersion" not in reader
    api_roles = [lid for lid, r in synthesized.template_json("api")["Resources"].items()
                 if r["Type"] == "AWS::IAM::Role" and lid.startswith("ApiRole")]
    assert reader["BackendRoles"] == [{"Fn::GetAtt": [api_roles[0], "Arn"]}]
    assert "SearchAccessFunction" in json.dumps(reader["ServiceToken"])
    for concern in ("storage", "auth", "ingest", "analysis"):
        assert not _access_resources(synthesized, concern), concern


def test_access_function_may_call_only_our_domain_and_has_time_to_wait_for_it(synthesized):
    template = synthesized.template("search")
    [function] = template.find_resources("AWS::Lambda::Function", {"Properties": {
        "Handler": "photo_organizer.handlers.opensearch_security.handler"}}).values()
    assert function["Properties"]["Timeout"] == 300
    role = function["Properties"]["Role"]["Fn::GetAtt"][0]
    statements = [s for p in template.find_resources("AWS::IAM::Policy").values()
                  if role in json.dumps(p["Properties"]["Roles"])
                  for s in p["Properties"]["PolicyDocument"]["Statement"]]
    es = [s for s in statements if any(str(a).startswith("es:") for a in _as_list(s["Action"]))]
    assert [s["Resource"] for s in es] == [f"{DOMAIN_ARN}/*"]


def test_slow_application_and_audit_logs_go_to_encrypted_log_groups_only_our_domain_may_write(synthesized):
    template = synthesized.template("search")
    publishing = _domain(synthesized)["LogPublishingOptions"]
    assert set(publishing) == {"SEARCH_SLOW_LOGS", "INDEX_SLOW_LOGS", "ES_APPLICATION_LOGS", "AUDIT_LOGS"}
    assert all(option["Enabled"] for option in publishing.values())
    groups = template.find_resources("AWS::Logs::LogGroup")
    for name in ("slow-search", "slow-index", "application", "audit"):
        template.has_resource_properties("AWS::Logs::LogGroup", {
            "LogGroupName": {"Fn::Join": ["", [f"/photo-organizer/dev/opensearch/{name}-", Match.any_value()]]},
            "KmsKeyId": Match.any_value()})
    policy = next(iter(template.find_resources("AWS::Logs::ResourcePolicy").values()))["Properties"]
    assert DOMAIN_ARN in str(policy["PolicyDocument"]) and "es.amazonaws.com" in str(policy["PolicyDocument"])
    # the domain may write into each group it publishes to, and into no other
    published = {option["CloudWatchLogsLogGroupArn"]["Fn::GetAtt"][0] for option in publishing.values()}
    assert published <= set(groups)
    assert {lid for lid in groups if lid in str(policy["PolicyDocument"])} == published
    # no custom resource (Lambda) for the logs policy or the access policy
    assert not template.find_resources("Custom::CloudwatchLogResourcePolicy")
    assert not template.find_resources("Custom::OpenSearchAccessPolicy")


def test_indexer_function_configuration(synthesized):
    settings = synthesized.stacks.settings
    synthesized.template("search").has_resource_properties("AWS::Lambda::Function", {
        "Runtime": "python3.12",
        "Architectures": ["arm64"],
        "Handler": "photo_organizer.handlers.indexer.handler",
        "MemorySize": settings.indexer_memory_mb,
        "Timeout": settings.indexer_timeout_seconds,
        "Environment": {"Variables": Match.object_like({
            "PO_OPENSEARCH_ENDPOINT": {"Fn::Join": ["", ["https://", {"Fn::GetAtt": [Match.any_value(),
                                                                                     "DomainEndpoint"]}]]},
            "PO_OPENSEARCH_ALIAS": "photos",
            "PO_OPENSEARCH_SERVICE": "es",
            "PO_TABLE_NAME": Match.any_value(),
        })},
    })


def test_stream_mapping_bisects_retries_reports_item_failures_and_has_a_failure_destination(synthesized):
    settings = synthesized.stacks.settings
    synthesized.template("search").has_resource_properties("AWS::Lambda::EventSourceMapping", {
        "StartingPosition": "TRIM_HORIZON",
        "BatchSize": settings.indexer_batch_size,
        "BisectBatchOnFunctionError": True,
        "MaximumRetryAttempts": settings.indexer_retry_attempts,
        "MaximumRecordAgeInSeconds": settings.indexer_max_record_age_seconds,
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "DestinationConfig": {"OnFailure": {"Destination": {
            "Fn::GetAtt": [Match.string_like_regexp("^IndexerFailures"), "Arn"]}}},
    })
    mapping = next(iter(synthesized.template("search").find_resources("AWS::Lambda::EventSourceMapping").values()))
    assert "StreamArn" in str(mapping["Properties"]["EventSourceArn"])


def test_failure_queue_is_encrypted_with_the_cmk_and_tls_only(synthesized):
    template = synthesized.template("search")
    queue = next(iter(template.find_resources("AWS::SQS::Queue").values()))["Properties"]
    assert "DataKey" in str(queue["KmsMasterKeyId"])
    policy = next(iter(template.find_resources("AWS::SQS::QueuePolicy").values()))["Properties"]
    assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
               for s in policy["PolicyDocument"]["Statement"])


def test_alarms_on_failure_destination_depth_and_indexer_errors(synthesized):
    template = synthesized.template("search")
    template.has_resource_properties("AWS::CloudWatch::Alarm", {
        "MetricName": "ApproximateNumberOfMessagesVisible", "Namespace": "AWS/SQS", "Threshold": 0,
        "ComparisonOperator": "GreaterThanThreshold",
        "Dimensions": [{"Name": "QueueName",
                        "Value": {"Fn::GetAtt": [Match.string_like_regexp("^IndexerFailures"), "QueueName"]}}],
    })
    template.has_resource_properties("AWS::CloudWatch::Alarm", {
        "MetricName": "Errors", "Namespace": "AWS/Lambda", "Threshold": 0,
        "ComparisonOperator": "GreaterThanThreshold",
        "Dimensions": [{"Name": "FunctionName", "Value": {"Ref": Match.string_like_regexp("^IndexerFunction")}}],
    })


def test_search_routes_use_the_jwt_authorizer(synthesized):
    routes = synthesized.template("api").find_resources("AWS::ApiGatewayV2::Route")
    by_key = {r["Properties"]["RouteKey"]: r["Properties"] for r in routes.values()}
    for key in ("GET /search", "GET /search/suggest"):
        assert by_key[key]["AuthorizationType"] == "JWT", key
        assert by_key[key]["AuthorizerId"]["Ref"].startswith("HttpApiCognitoJwt"), key


def test_api_function_reads_the_index_with_get_and_post_only(synthesized):
    template = synthesized.template("api")
    statements = [s for p in template.find_resources("AWS::IAM::Policy").values()
                  for s in p["Properties"]["PolicyDocument"]["Statement"]]
    search = [s for s in statements if any(str(a).startswith("es:") for a in s["Action"])]
    # Only the search paths (issue 13), not the whole domain: tests/infrastructure/test_api_least_privilege.py.
    assert [(s["Action"], s["Effect"], sorted(s["Resource"])) for s in search] == [(
        ["es:ESHttpGet", "es:ESHttpPost"], "Allow",
        sorted([f"{DOMAIN_ARN}/photos*/_search", f"{DOMAIN_ARN}/photos*/_count", f"{DOMAIN_ARN}/_msearch"]))]
    template.has_resource_properties("AWS::Lambda::Function", {
        "Handler": "photo_organizer.handlers.api.handler",
        "Environment": {"Variables": Match.object_like({
            "PO_OPENSEARCH_ENDPOINT": Match.any_value(), "PO_OPENSEARCH_ALIAS": "photos",
            "PO_OPENSEARCH_SERVICE": "es"})},
    })


def test_serverless_setting_creates_a_collection_with_policies_scoped_to_the_two_roles(synthesized_serverless):
    """The one test of the second App (search_engine=serverless)."""
    template = synthesized_serverless.template("search")
    assert not template.find_resources("AWS::OpenSearchService::Domain")
    template.has_resource_properties("AWS::OpenSearchServerless::Collection", {
        "Name": "photo-organizer-dev-photos", "Type": "SEARCH", "StandbyReplicas": "DISABLED"})
    policies = {p["Properties"]["Type"]: p["Properties"] for p in
                template.find_resources("AWS::OpenSearchServerless::SecurityPolicy").values()}
    assert set(policies) == {"encryption", "network"}
    encryption = json.dumps(policies["encryption"]["Policy"])
    assert '\\"AWSOwnedKey\\":false' in encryption and "DataKey" in encryption
    assert "collection/photo-organizer-dev-photos" in json.dumps(policies["network"]["Policy"])
    data = next(iter(template.find_resources("AWS::OpenSearchServerless::AccessPolicy").values()))["Properties"]
    assert data["Type"] == "data"
    document = json.dumps(data["Policy"])
    # The search stack's policy names only its own indexer; the API stack adds the API role's read-only policy.
    assert "IndexerRole" in document and "ApiRole" not in document and ":role/" not in document
    [api_data] = synthesized_serverless.template("api").find_resources(
        "AWS::OpenSearchServerless::AccessPolicy").values()
    api_document = json.dumps(api_data["Properties"]["Policy"])
    assert api_data["Properties"]["Name"] == "photo-organizer-dev-photos-api"
    assert "ApiRole" in api_document and "aoss:ReadDocument" in api_document and "WriteDocument" not in api_document
    assert not synthesized_serverless.template("search").find_resources("Custom::OpenSearchAccess")
    assert not synthesized_serverless.template("api").find_resources("Custom::OpenSearchAccess")
    template.has_resource_properties("AWS::Lambda::Function", {
        "Handler": "photo_organizer.handlers.indexer.handler",
        "Environment": {"Variables": Match.object_like({
            "PO_OPENSEARCH_SERVICE": "aoss",
            "PO_OPENSEARCH_ENDPOINT": {"Fn::GetAtt": [Match.string_like_regexp("^Collection"), "CollectionEndpoint"]},
        })},
    })
    api_statements = [s for p in synthesized_serverless.template("api").find_resources("AWS::IAM::Policy").values()
                      for s in p["Properties"]["PolicyDocument"]["Statement"]]
    assert any(s["Action"] == "aoss:APIAccessAll" for s in api_statements)
    for concern in ("search", "api", "analysis"):
        annotations = Annotations.from_stack(getattr(synthesized_serverless.stacks, concern))
        pattern = Match.string_like_regexp("AwsSolutions-.*")
        assert annotations.find_error("*", pattern) + annotations.find_warning("*", pattern) == [], concern


def test_serverless_is_a_search_collection_and_vectorsearch_is_refused_with_the_reason():
    """VECTORSEARCH collections assign their own document ids: the indexer could not update, delete or version
    a photo's document. No synth needed: the settings check is where the choice is refused."""
    from stacks.settings import Settings, SettingsError

    assert Settings().opensearch_serverless_type == "SEARCH"
    Settings(search_engine="serverless").check()
    Settings(search_engine="domain", opensearch_serverless_type="VECTORSEARCH").check()  # unused by a domain
    with pytest.raises(SettingsError) as refused:
        Settings(search_engine="serverless", opensearch_serverless_type="VECTORSEARCH").check()
    message = str(refused.value)
    assert "VECTORSEARCH is not supported" in message
    assert "could not update or delete a photo's document by id" in message and "version" in message
    assert "search_engine=domain (the default) for semantic search" in message
    with pytest.raises(SettingsError, match="must be SEARCH"):
        Settings(search_engine="serverless", opensearch_serverless_type="TIMESERIES").check()


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]
