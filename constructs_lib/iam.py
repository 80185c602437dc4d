"""IAM building blocks: statements, policy documents, roles and grants.

Policies are written as :class:`Statement` values and rendered with the provider's
``aws_iam_policy_document`` data source, so the synthesized JSON keeps them structured
(reviewable in a plan, checkable by tests). Two rules hold everywhere (STYLE 6):

* no wildcard actions: every action is named;
* a ``*`` resource only where the action has no resource-level permission, and then the
  statement must say why (``star_reason``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from constructs_lib._cdktf import Construct, TerraformResource
from constructs_lib._providers import aws


@dataclass(frozen=True, kw_only=True)
class Condition:
    test: str
    variable: str
    values: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Principal:
    type: str  # "Service", "AWS", "Federated", "*"
    identifiers: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Statement:
    sid: str
    actions: tuple[str, ...]
    resources: tuple[str, ...] = ()
    effect: str = "Allow"
    conditions: tuple[Condition, ...] = ()
    principals: tuple[Principal, ...] = ()
    star_reason: str | None = None

    def __post_init__(self) -> None:
        for action in self.actions:
            # A wildcard only in a Deny (e.g. "deny every sqs:* call without TLS").
            if "*" in action and self.effect != "Deny":
                raise ValueError(f"statement {self.sid}: wildcard action {action!r} is not allowed")
        if "*" in self.resources and self.effect == "Allow" and not self.star_reason:
            raise ValueError(
                f"statement {self.sid}: a '*' resource needs star_reason (which of "
                f"{', '.join(self.actions)} has no resource-level permission)"
            )
        if not self.sid.isalnum():
            raise ValueError(f"statement sid {self.sid!r} must be alphanumeric")


def render_statements(statements: Iterable[Statement]) -> list[dict]:
    out = []
    for st in statements:
        item: dict = {"sid": st.sid, "effect": st.effect, "actions": list(st.actions)}
        if st.resources:
            item["resources"] = list(st.resources)
        if st.conditions:
            item["condition"] = [
                {"test": c.test, "variable": c.variable, "values": list(c.values)}
                for c in st.conditions
            ]
        if st.principals:
            item["principals"] = [
                {"type": p.type, "identifiers": list(p.identifiers)} for p in st.principals
            ]
        out.append(item)
    return out


def policy_document(scope: Construct, id_: str, statements: Sequence[Statement]) -> str:
    """Render statements with ``aws_iam_policy_document``; returns its JSON (a token)."""
    doc = aws.data_aws_iam_policy_document.DataAwsIamPolicyDocument(
        scope, id_, statement=render_statements(statements)
    )
    return doc.json


def service_principal(*services: str) -> Principal:
    return Principal(type="Service", identifiers=tuple(services))


def deny_insecure_transport(resource_arns: Sequence[str], service: str) -> Statement:
    """A resource policy statement refusing every ``<service>:*`` call made without TLS."""
    return Statement(
        sid="DenyInsecureTransport",
        effect="Deny",
        actions=(f"{service}:*",),
        resources=tuple(resource_arns),
        principals=(Principal(type="*", identifiers=("*",)),),
        conditions=(Condition(test="Bool", variable="aws:SecureTransport", values=("false",)),),
    )


def attach(grantee: Construct, id_: str, statements: Sequence[Statement], *,
           role_name: str) -> TerraformResource:
    """One inline policy on ``role_name`` made of ``statements`` (created under grantee);
    returns the ``aws_iam_role_policy``."""
    scope = Construct(grantee, id_)
    return aws.iam_role_policy.IamRolePolicy(
        scope,
        "Policy",
        name=id_,
        role=role_name,
        policy=policy_document(scope, "Document", statements),
    )


@runtime_checkable
class HasRoleName(Protocol):
    """Anything exposing the name of its IAM role (:class:`Role`, ``SdRuntime``, ...)."""

    @property
    def role_name(self) -> str: ...


# What a grant method accepts as the grantee: a role name (a literal or a reference), an
# object with a ``role_name`` (this library's roles and constructs owning one), or an
# ``aws_iam_role`` resource or data source of the caller's own stack.
RoleRef = str | HasRoleName | Construct


@dataclass(frozen=True, kw_only=True)
class Grant:
    """What a grant created: one inline policy (``policy``, an ``aws_iam_role_policy``) on
    the role ``role_name``, made of ``statements``, under the construct ``scope``."""

    role_name: str
    statements: tuple[Statement, ...]
    policy: TerraformResource
    scope: Construct

    @property
    def policy_name(self) -> str:
        return self.scope.node.id

    @property
    def actions(self) -> tuple[str, ...]:
        """Every action granted, in statement order."""
        return tuple(a for st in self.statements if st.effect == "Allow" for a in st.actions)


def role_name_of(role: Any) -> str:
    """The role name a :data:`RoleRef` stands for."""
    if isinstance(role, str):
        if not role:
            raise ValueError("a grant needs a role: got an empty role name")
        return role
    if _is_iam_role_binding(role):
        return role.name
    if isinstance(role, HasRoleName):
        return role.role_name
    raise TypeError(
        f"a grant takes a role name, a construct with a role_name, or an aws_iam_role "
        f"resource or data source (got {type(role).__name__})")


def _is_iam_role_binding(role: Any) -> bool:
    kind = (getattr(role, "terraform_resource_type", None)
            if isinstance(role, Construct) else None)
    return kind == "aws_iam_role"


def grant(id_: str, statements: Sequence[Statement], *, role: RoleRef,
          scope: Construct | None = None) -> Grant:
    """One inline policy ``id_`` on ``role`` made of ``statements``; returns the :class:`Grant`.

    The policy is created under ``scope``, by default under ``role`` itself when it is a
    construct (so its Terraform address follows the role's); a role given by name needs
    ``scope``.
    """
    role_name = role_name_of(role)
    where = scope if scope is not None else (role if isinstance(role, Construct) else None)
    if where is None:
        raise ValueError(f"grant {id_}: a role given by name ({role_name!r}) needs scope=, "
                         "the construct to create the policy under")
    policy = attach(where, id_, statements, role_name=role_name)
    return Grant(role_name=role_name, statements=tuple(statements), policy=policy,
                 scope=where.node.find_child(id_))


class Role(Construct):
    """An IAM role assumed by a service or by EKS Pod Identity; grants attach to it."""

    def __init__(self, scope: Construct, id_: str, *, name: str, assumed_by: Principal,
                 assume_actions: tuple[str, ...] = ("sts:AssumeRole",),
                 assume_conditions: tuple[Condition, ...] = (),
                 description: str = "", tags: dict[str, str] | None = None) -> None:
        super().__init__(scope, id_)
        trust = policy_document(
            self,
            "Trust",
            [Statement(sid="Trust", actions=assume_actions, principals=(assumed_by,),
                       conditions=assume_conditions)],
        )
        self._role = aws.iam_role.IamRole(
            self, "Role", name=name, assume_role_policy=trust, description=description or None,
            tags=tags or None,
        )

    @property
    def role_name(self) -> str:
        return self._role.name

    @property
    def role_arn(self) -> str:
        return self._role.arn

    @property
    def resource(self):
        return self._role

    def add_policy(self, id_: str, statements: Sequence[Statement]) -> Grant:
        return grant(id_, statements, role=self)

    def attach_managed(self, id_: str, policy_arn: str) -> TerraformResource:
        return aws.iam_role_policy_attachment.IamRolePolicyAttachment(
            self, id_, role=self.role_name, policy_arn=policy_arn
        )


KMS_ADMIN_ACTIONS = (
    "kms:DescribeKey", "kms:EnableKey", "kms:DisableKey", "kms:EnableKeyRotation",
    "kms:DisableKeyRotation", "kms:GetKeyPolicy", "kms:PutKeyPolicy",
    "kms:GetKeyRotationStatus", "kms:ListResourceTags", "kms:ListGrants", "kms:RevokeGrant",
    "kms:RetireGrant", "kms:TagResource", "kms:UntagResource", "kms:UpdateKeyDescription",
    "kms:CreateAlias", "kms:UpdateAlias", "kms:DeleteAlias", "kms:ListAliases",
    "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion",
)
KMS_USE_ACTIONS = (
    "kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo",
    "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:CreateGrant",
)
_KEY_ITSELF = "a key policy's resource is always the key itself"


def key_policy_statements(*, partition: str, region: str, account_id: str) -> list[Statement]:
    """The statements every customer-managed key here starts with.

    The account administers and uses the key (so IAM policies can grant its use), and
    CloudWatch Logs may use it for this account's log groups only.
    """
    return [
        Statement(
            sid="AccountAdministers",
            actions=KMS_ADMIN_ACTIONS + KMS_USE_ACTIONS,
            resources=("*",),
            principals=(Principal(type="AWS", identifiers=(
                f"arn:{partition}:iam::{account_id}:root",)),),
            star_reason=_KEY_ITSELF,
        ),
        Statement(
            sid="LogsUseKey",
            actions=("kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo",
                     "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext",
                     "kms:DescribeKey"),
            resources=("*",),
            principals=(service_principal(f"logs.{region}.amazonaws.com"),),
            conditions=(Condition(
                test="ArnLike", variable="kms:EncryptionContext:aws:logs:arn",
                values=(f"arn:{partition}:logs:{region}:{account_id}:log-group:*",),
            ),),
            star_reason=_KEY_ITSELF,
        ),
    ]


POD_IDENTITY_PRINCIPAL = service_principal("pods.eks.amazonaws.com")
POD_IDENTITY_ACTIONS = ("sts:AssumeRole", "sts:TagSession")

__all__ = [
    "KMS_ADMIN_ACTIONS",
    "KMS_USE_ACTIONS",
    "POD_IDENTITY_ACTIONS",
    "POD_IDENTITY_PRINCIPAL",
    "Condition",
    "Grant",
    "HasRoleName",
    "Principal",
    "Role",
    "RoleRef",
    "Statement",
    "attach",
    "deny_insecure_transport",
    "grant",
    "key_policy_statements",
    "policy_document",
    "render_statements",
    "role_name_of",
    "service_principal",
]
