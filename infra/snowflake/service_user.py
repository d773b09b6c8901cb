"""One key-pair Snowflake service user: its sign-in networks, key, role grant and secret."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_snowflake as snowflake
import pulumi_tls as tls

from infra.component import Component
from infra.sections import StackName
from infra.snowflake import naming as n
from infra.snowflake.rotation import slots


def public_key_body(pem: str) -> str:
    """Snowflake takes the RSA public key as one line without the PEM header and trailer."""
    return "".join(line.strip() for line in pem.strip().splitlines() if "-----" not in line)


@dataclass(frozen=True)
class ServiceUserArgs:
    """Who the user is, what it signs in as and from where, and where its key is kept."""

    # The user's base name (AIRBYTE, DBT, DASHBOARD); `naming` turns it into account names.
    base: str
    naming: n.Naming
    stack: StackName
    role: snowflake.AccountRole
    warehouse: snowflake.Warehouse
    database: snowflake.Database
    # The schema of the default namespace and of the secret's payload.
    schema: str
    cidrs: pulumi.Input[Sequence[str]]
    # ADMIN.NETWORK, where the user's ingress network rule lives.
    network_database: snowflake.Database
    network_schema: snowflake.Schema
    # Users, roles, network rules and policies are managed as SECURITYADMIN.
    securityadmin: snowflake.Provider
    account_identifier: str
    host: str
    rsa_bits: int
    secret_name_prefix: str = "mdp"
    secrets_kms_key_id: pulumi.Input[str] | None = None
    secret_recovery_window_days: int = 30
    tags: Mapping[str, str] = field(default_factory=dict)
    # The current key generation (see infra.snowflake.rotation): its key signs in, the one
    # before stays in the other slot until the next rotation.
    key_generation: int = 1


class ServiceUser(Component[ServiceUserArgs]):
    """A TYPE=SERVICE user signing in with an RSA key from its own networks only.

    Its key rotates through Snowflake's two slots: generation g's key and generation g-1's are
    both accepted; the secret holds g's. A rotation declares g+1's key, which goes into the slot
    of g-1 (no consumer uses it), and switches the secret and every consumer to it; g's key stays
    valid meanwhile, and goes at the next rotation.
    """

    TYPE = "mdp:snowflake:ServiceUser"

    user_name: pulumi.Output[str]
    key_generation: int
    private_key_pem: pulumi.Output[str]
    key_secret_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: ServiceUserArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        # Children kept their names when they moved under this component: the aliases keep
        # their state (and the user's key) instead of replacing them.
        self._old_parent = (opts.parent if opts else None) or None
        super().__init__(name, args, opts)

    def _declare(self, name: str, args: ServiceUserArgs) -> Mapping[str, Any]:
        policy = self._create_network_policy()
        self.key_generation = args.key_generation
        self._keys = self._create_keys()
        self._key = self._keys[self.key_generation]
        user = self._create_user(policy)
        secret = self._create_secret(user)
        self.user_name = user.name
        # Through the user, as the secret: consumers switch once Snowflake has the new key.
        self.private_key_pem = pulumi.Output.secret(
            pulumi.Output.all(user=user.name, pem=self._key.private_key_pem_pkcs8).apply(
                lambda v: v["pem"]
            )
        )
        self.key_secret_arn = secret.arn
        return {"user_name": self.user_name, "key_secret_arn": self.key_secret_arn}

    def _child_opts(
        self, provider: pulumi.ProviderResource | None = None, *, old_name: str | None = None
    ) -> pulumi.ResourceOptions:
        aliases = (
            [pulumi.Alias(name=old_name, parent=self._old_parent)]
            if self._old_parent is not None
            else []
        )
        return pulumi.ResourceOptions(parent=self, provider=provider, aliases=aliases)

    def _create_keys(self) -> dict[int, tls.PrivateKey]:
        first, second = slots(self.key_generation)
        keys = {}
        for generation in (first, second):
            # The key of the first slot was the user's only key before rotation: it keeps its
            # state, so the first deployment with rotation replaces no key a consumer uses.
            aliases = [pulumi.Alias(name=f"{self._name}-key")] if generation == first else []
            if generation == first and self._old_parent is not None:
                aliases.append(pulumi.Alias(name=f"{self._name}-key", parent=self._old_parent))
            keys[generation] = tls.PrivateKey(
                f"{self._name}-key-{generation}",
                algorithm="RSA",
                rsa_bits=self._args.rsa_bits,
                opts=pulumi.ResourceOptions(parent=self, aliases=aliases),
            )
        return keys

    def _create_network_policy(self) -> snowflake.NetworkPolicy:
        a, user = self._args, self._args.naming.user(self._args.base)
        rule = snowflake.NetworkRule(
            f"{self._name}-ingress-rule",
            database=a.network_database.name,
            schema=a.network_schema.name,
            name=f"{a.base}_SVC_INGRESS",
            type="IPV4",
            mode="INGRESS",
            value_lists=a.cidrs,
            comment=f"Where {user} may sign in from",
            opts=self._child_opts(a.securityadmin, old_name=f"{self._name}-ingress-rule"),
        )
        return snowflake.NetworkPolicy(
            f"{self._name}-network-policy",
            name=a.naming.network_policy(a.base),
            allowed_network_rule_lists=[
                pulumi.Output.all(
                    database=a.network_database.name, schema=rule.schema, rule=rule.name
                ).apply(lambda v: n.quote(v["database"], v["schema"], v["rule"]))
            ],
            comment=f"Sign-in networks of {user}",
            opts=self._child_opts(a.securityadmin, old_name=f"{self._name}-network-policy"),
        )

    def _create_user(self, policy: snowflake.NetworkPolicy) -> snowflake.ServiceUser:
        a, user_name = self._args, self._args.naming.user(self._args.base)
        user = snowflake.ServiceUser(
            f"{self._name}-user",
            name=user_name,
            login_name=user_name,
            display_name=f"mdp {a.base.lower()} ({a.stack})",
            comment=f"mdp {a.stack}: key-pair service user for {a.base.lower()}",
            default_role=a.role.name,
            # Only the default role's privileges, never a union of every granted role.
            default_secondary_roles_option="NONE",
            default_warehouse=a.warehouse.name,
            default_namespace=pulumi.Output.concat(a.database.name, ".", a.schema),
            rsa_public_key=self._keys[slots(self.key_generation)[0]].public_key_pem.apply(
                public_key_body
            ),
            rsa_public_key2=self._keys[slots(self.key_generation)[1]].public_key_pem.apply(
                public_key_body
            ),
            network_policy=policy.name,
            opts=self._child_opts(a.securityadmin, old_name=self._name),
        )
        snowflake.GrantAccountRole(
            f"{self._name}-role",
            role_name=a.role.name,
            user_name=user.name,
            opts=self._child_opts(a.securityadmin, old_name=f"{self._name}-role"),
        )
        return user

    def _create_secret(self, user: snowflake.ServiceUser) -> aws.secretsmanager.Secret:
        a, user_name = self._args, self._args.naming.user(self._args.base)
        secret = aws.secretsmanager.Secret(
            f"{self._name}-key-secret",
            name=f"{a.secret_name_prefix}/{a.stack}/snowflake/{a.base.lower()}-svc",
            description=f"Key-pair credentials of Snowflake user {user_name} (mdp {a.stack})",
            kms_key_id=a.secrets_kms_key_id,
            recovery_window_in_days=a.secret_recovery_window_days,
            tags={**a.tags, "mdp:snowflake-user": user_name},
            opts=self._child_opts(old_name=f"{self._name}-key-secret"),
        )
        # Read from the user, so the secret (and every consumer reading it) switches to the new
        # key only once Snowflake accepts it.
        payload: pulumi.Output[str] = pulumi.Output.all(
            user=user.name,
            key_generation=self.key_generation,
            role=a.role.name,
            warehouse=a.warehouse.name,
            database=a.database.name,
            private_key=self._key.private_key_pem_pkcs8,
        ).apply(
            lambda v: json.dumps(
                {
                    "account": a.account_identifier,
                    "host": a.host,
                    "schema": a.schema,
                    **v,
                },
                sort_keys=True,
            )
        )
        secret_string: pulumi.Output[str] = pulumi.Output.secret(payload)
        aws.secretsmanager.SecretVersion(
            f"{self._name}-key-secret-version",
            secret_id=secret.id,
            secret_string=secret_string,
            opts=self._child_opts(old_name=f"{self._name}-key-secret-version"),
        )
        return secret
