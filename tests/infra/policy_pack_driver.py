"""Runs the policy pack the way the Pulumi CLI does, in the pack's own environment (.venv-policy).

Usage: .venv-policy/bin/python tests/infra/policy_pack_driver.py < request.json > answer.json

The request is {"pack": dir, "production": bool | null, "config": {policy: properties} | null,
"resources": [...]} (a `config` is a `--policy-pack-config` file's content), each resource
{"type", "name", "urn", "parent", "protect", "properties"} with the engine's secret wrappers
kept. The driver starts the pack as the CLI's Python analyzer plugin does
(`python -u -m pulumi.policy <engine> <pack dir>`), reads the port the pack prints, then talks
to it over gRPC: GetAnalyzerInfo, Configure (the policy config the CLI would send), Analyze per
resource and AnalyzeStack once. It prints the pack's info and every diagnostic as JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import grpc
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

LEVELS = {
    analyzer_pb2.ADVISORY: "advisory",
    analyzer_pb2.MANDATORY: "mandatory",
    analyzer_pb2.DISABLED: "disabled",
    analyzer_pb2.REMEDIATE: "remediate",
}


def _struct(value: dict[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(value)
    return out


def _described(resource: dict[str, Any]) -> dict[str, Any]:
    """What the engine tells an analyzer about one resource, alone or as part of the stack."""
    return {
        "type": resource["type"],
        "properties": _struct(resource["properties"]),
        "urn": resource["urn"],
        "name": resource["name"],
        "options": _options(resource),
    }


def _options(resource: dict[str, Any]) -> analyzer_pb2.AnalyzerResourceOptions:
    return analyzer_pb2.AnalyzerResourceOptions(
        protect=bool(resource.get("protect")), parent=resource.get("parent") or ""
    )


def _diagnostics(response: Any) -> list[dict[str, Any]]:
    return [
        {
            "policy": d.policyName,
            "pack": d.policyPackName,
            "level": LEVELS[d.enforcementLevel],
            "urn": d.urn,
            "message": d.message,
        }
        for d in response.diagnostics
    ]


def run(request: dict[str, Any]) -> dict[str, Any]:
    pack = subprocess.Popen(
        [sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:0", request["pack"]],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert pack.stdout is not None
        port = pack.stdout.readline().strip()
        if not port.isdigit():
            pack.kill()
            raise SystemExit(f"the policy pack did not start: {port}\n{pack.communicate()[1]}")
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = analyzer_pb2_grpc.AnalyzerStub(channel)
            info = stub.GetAnalyzerInfo(empty_pb2.Empty())
            policies = {p.name: LEVELS[p.enforcementLevel] for p in info.policies}
            schemas = {p.name: json_format.MessageToDict(p.configSchema) for p in info.policies}
            settings: dict[str, dict[str, Any]] | None = request.get("config")
            if settings is None and request.get("production") is not None:
                settings = {p.name: {"production": request["production"]} for p in info.policies}
            if settings is not None:
                # What the CLI sends for a `--policy-pack-config` file: each policy's
                # properties, and the level each policy declares.
                config = {
                    p.name: analyzer_pb2.PolicyConfig(
                        enforcementLevel=p.enforcementLevel,
                        properties=_struct(settings[p.name]),
                    )
                    for p in info.policies
                    if p.name in settings
                }
                stub.Configure(analyzer_pb2.ConfigureAnalyzerRequest(policyConfig=config))
            diagnostics: list[dict[str, Any]] = []
            for r in request["resources"]:
                answer = stub.Analyze(analyzer_pb2.AnalyzeRequest(**_described(r)))
                diagnostics += _diagnostics(answer)
            stack = [
                analyzer_pb2.AnalyzerResource(**_described(r), parent=r.get("parent") or "")
                for r in request["resources"]
            ]
            answer = stub.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=stack))
            diagnostics += _diagnostics(answer)
        return {
            "name": info.name,
            "policies": policies,
            "config_schemas": schemas,
            "diagnostics": diagnostics,
        }
    finally:
        pack.kill()
        pack.wait()


if __name__ == "__main__":
    json.dump(run(json.load(sys.stdin)), sys.stdout)
