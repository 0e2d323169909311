#!/usr/bin/env python3
"""Generates xf's JSON Schema for one OCSF event class from the official OCSF schema source.

    python3 scripts/ocsf_schema.py > schemas/ocsf-detection-finding.schema.json

reads third_party/ocsf-schema-1.3.0 (or --source DIR) and writes JSON Schema 2020-12 for
--class (default detection_finding, class_uid 2004). Python 3.11 standard library only; the
same source gives the same bytes, and tests/schemas.rs fails when the committed schema differs.

What it resolves, the way the OCSF server does:
- a class's `extends` chain (base_event → finding → detection_finding) and an object's
  (e.g. _entity → endpoint → network_endpoint), each level deep-merged over its parent;
- `$include`d files: includes/ add ordinary attributes, profiles/ add attributes of that profile;
- every attribute merged over its dictionary.json entry (type, is_array, enum, sibling,
  observable), so a class's enum values join the dictionary's (0 Unknown, 99 Other);
- the datetime profile: a `<name>_dt` (datetime_t) beside every timestamp_t attribute.

What it writes:
- one `$defs` entry per object reachable from the class (recursive objects are `$ref`s, so no
  depth cap is needed), `additionalProperties: false`; `object`-typed attributes (`unmapped`)
  stay open;
- `requirement: required` → `required`; `at_least_one` / `just_one` constraints → anyOf / oneOf;
- data types from dictionary `types`: JSON type, `regex` → `pattern`, `max_len` → `maxLength`,
  `range` → minimum/maximum;
- enums as integer `enum`s, and the sibling caption (`activity_name` for `activity_id`, …) must
  be the value's caption unless the value is 99 (Other, which the source names);
- class_uid, category_uid and their names as constants; type_uid = class_uid * 100 + activity_id
  and type_name = "<class>: <activity>";
- attributes of profiles the class may declare are allowed (their union); a profile's required
  attributes are required when `metadata.profiles` lists it;
- annotations xf's validator reads (src/schema/ocsf.rs) for what JSON Schema cannot say:
  `x-ocsf-observable` (the observable type_id of an attribute), `x-ocsf-profile` (the profile an
  attribute belongs to, allowed only when declared) and, at the root, `x-ocsf`.
"""

import argparse
import copy
import json
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = REPO / "third_party" / "ocsf-schema-1.3.0"

# OCSF's scalar base types → JSON Schema types.
PRIMITIVES = {
    "string_t": {"type": "string"},
    "integer_t": {"type": "integer"},
    "long_t": {"type": "integer"},
    "float_t": {"type": "number"},
    "boolean_t": {"type": "boolean"},
    "json_t": {},
}
OTHER = "99"


def deep_merge(base, over):
    """`over` merged into a copy of `base`: dicts key by key, anything else replaced."""
    merged = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


class Source:
    """The OCSF schema source folder: dictionary, objects, events and the files they include."""

    def __init__(self, root):
        self.root = pathlib.Path(root)
        dictionary = self.read("dictionary.json")
        self.dictionary = dictionary["attributes"]
        self.types = dictionary["types"]["attributes"]
        self.version = self.read("version.json")["version"]
        self.categories = self.read("categories.json")["attributes"]
        self.objects = {}
        for path in sorted((self.root / "objects").glob("*.json")):
            definition = json.loads(path.read_text())
            self.objects[definition["name"]] = definition
        self.events = {}
        for path in sorted((self.root / "events").rglob("*.json")):
            definition = json.loads(path.read_text())
            self.events[definition["name"]] = definition
        self.resolved_objects = {}

    def read(self, name):
        return json.loads((self.root / name).read_text())

    def attributes(self, definition):
        """A file's attributes with its `$include`s merged in (its own attributes win)."""
        attributes = {}
        for include in definition.get("attributes", {}).get("$include", []):
            included = self.read(include)
            own = self.attributes(included)
            if included.get("meta") == "profile":
                for attribute in own.values():
                    attribute["profile"] = included["name"]
            attributes = deep_merge(attributes, own)
        own = {k: v for k, v in definition.get("attributes", {}).items() if k != "$include"}
        return deep_merge(attributes, own)

    def resolve(self, definition, table):
        """A definition with its `extends` chain applied: attributes, constraints, observable."""
        parent = definition.get("extends")
        resolved = {"attributes": {}, "constraints": {}}
        if parent:
            base = self.resolve(table[parent], table)
            resolved = {
                "attributes": base["attributes"],
                "constraints": base["constraints"],
                "observable": base.get("observable"),
            }
        resolved["attributes"] = deep_merge(resolved["attributes"], self.attributes(definition))
        resolved["constraints"] = deep_merge(resolved["constraints"], definition.get("constraints", {}))
        if "observable" in definition:
            resolved["observable"] = definition["observable"]
        # A class's category is its parent's unless it names its own (vulnerability_finding
        # extends finding and names none); the other keys are the definition's own.
        if parent and "category" in base:
            resolved["category"] = base["category"]
        for key in ("name", "caption", "uid", "category"):
            if key in definition:
                resolved[key] = definition[key]
        resolved["attributes"] = self.complete(resolved["attributes"])
        return resolved

    def complete(self, attributes):
        """Each attribute over its dictionary entry, plus the datetime profile's `_dt` siblings."""
        completed = {}
        for name, local in sorted(attributes.items()):
            completed[name] = deep_merge(self.dictionary.get(name, {}), local)
        for name, attribute in list(completed.items()):
            dt = name + "_dt"
            if attribute.get("type") == "timestamp_t" and dt not in completed:
                completed[dt] = deep_merge(
                    self.dictionary.get(dt, {"caption": attribute.get("caption", name)}),
                    {"type": "datetime_t", "requirement": "optional", "profile": "datetime",
                     "is_array": attribute.get("is_array", False)},
                )
        return dict(sorted(completed.items()))

    def object(self, name):
        if name not in self.resolved_objects:
            self.resolved_objects[name] = self.resolve(self.objects[name], self.objects)
        return self.resolved_objects[name]

    def type_chain(self, name):
        """A data type and the types it is made from, most specific first."""
        chain = []
        while name in self.types:
            chain.append((name, self.types[name]))
            name = self.types[name].get("type")
            if name is None:
                break
        return chain

    def observable_types(self):
        """Every observable type_id with its caption, as the OCSF server lists them."""
        found = {"0": "Unknown", OTHER: "Other"}
        for name, definition in self.types.items():
            if "observable" in definition:
                found[str(definition["observable"])] = definition["caption"]
        for name, definition in self.dictionary.items():
            if "observable" in definition:
                found[str(definition["observable"])] = definition["caption"]
        for name, definition in self.objects.items():
            if "observable" in definition:
                found[str(definition["observable"])] = definition["caption"]
            for attribute, local in definition.get("attributes", {}).items():
                if isinstance(local, dict) and "observable" in local:
                    caption = f"{definition['caption']} Object: {attribute}"
                    found[str(local["observable"])] = caption
        return dict(sorted(found.items(), key=lambda item: int(item[0])))


class Generator:
    """Builds the JSON Schema of one class, collecting the objects it reaches under `$defs`."""

    def __init__(self, source):
        self.source = source
        self.defs = {}
        self.profiles = set()

    def scalar(self, type_name):
        """A data type as JSON Schema: its base type's, with each level's constraints on top."""
        chain = self.source.type_chain(type_name)
        if not chain:
            return copy.deepcopy(PRIMITIVES.get(type_name, {}))
        schema = copy.deepcopy(PRIMITIVES.get(chain[-1][0], {}))
        for _, definition in reversed(chain):
            if "regex" in definition:
                schema["pattern"] = definition["regex"]
            if "max_len" in definition and schema.get("type") == "string":
                schema["maxLength"] = definition["max_len"]
            if "range" in definition:
                schema["minimum"], schema["maximum"] = definition["range"]
        return schema

    def observable(self, attribute):
        """The observable type_id of an attribute: its own, its data type's, or its object's."""
        if "observable" in attribute:
            return attribute["observable"]
        type_name = attribute.get("type")
        for _, definition in self.source.type_chain(type_name):
            if "observable" in definition:
                return definition["observable"]
        if type_name in self.source.objects:
            return self.source.object(type_name).get("observable")
        return None

    def attribute(self, name, attribute):
        type_name = attribute.get("type", "json_t")
        if type_name == "object":
            schema = {"type": "object"}
        elif type_name in self.source.objects:
            self.define(type_name)
            schema = {"$ref": f"#/$defs/{type_name}"}
        else:
            schema = self.scalar(type_name)
            if "enum" in attribute:
                cast = int if schema.get("type") == "integer" else str
                schema["enum"] = sorted((cast(key) for key in attribute["enum"]), key=enum_order)
        if attribute.get("is_array"):
            schema = {"type": "array", "items": schema}
        described = {"title": attribute.get("caption", name)}
        described.update(schema)
        observable = self.observable(attribute)
        if observable is not None:
            described["x-ocsf-observable"] = observable
        if "profile" in attribute:
            described["x-ocsf-profile"] = attribute["profile"]
            self.profiles.add(attribute["profile"])
        return described

    def object_schema(self, caption, resolved):
        attributes = resolved["attributes"]
        schema = {
            "title": caption,
            "type": "object",
            "properties": {name: self.attribute(name, a) for name, a in attributes.items()},
            "additionalProperties": False,
        }
        required = [
            name
            for name, a in attributes.items()
            if a.get("requirement") == "required" and "profile" not in a
        ]
        if required:
            schema["required"] = required
        rules = self.constraints(resolved["constraints"], attributes)
        rules += self.siblings(attributes)
        if rules:
            schema["allOf"] = rules
        return schema

    def define(self, name):
        if name in self.defs:
            return
        self.defs[name] = None  # reserved: a recursive object refers to itself
        resolved = self.source.object(name)
        self.defs[name] = self.object_schema(resolved.get("caption", name), resolved)

    @staticmethod
    def constraints(constraints, attributes):
        rules = []
        for kind, combinator in (("at_least_one", "anyOf"), ("just_one", "oneOf")):
            names = [n for n in constraints.get(kind, []) if n in attributes]
            if names:
                rules.append({combinator: [{"required": [n]} for n in names]})
        return rules

    @staticmethod
    def siblings(attributes):
        """An enum's caption attribute holds the caption of its value (99, Other, is free)."""
        rules = []
        for name, attribute in attributes.items():
            sibling = attribute.get("sibling")
            if "enum" not in attribute or sibling not in attributes:
                continue
            integer = attribute.get("type") == "integer_t"
            for key, value in sorted(attribute["enum"].items(), key=lambda kv: enum_order(kv[0])):
                if key == OTHER:
                    continue
                rules.append({
                    "if": {"properties": {name: {"const": int(key) if integer else key}},
                           "required": [name]},
                    "then": {"properties": {sibling: {"const": value["caption"]}}},
                })
        return rules

    def event_class(self, name):
        source = self.source
        resolved = source.resolve(source.events[name], source.events)
        category = source.categories[resolved["category"]]
        class_uid = category["uid"] * 1000 + resolved["uid"]
        schema = self.object_schema(resolved["caption"], resolved)
        properties = schema["properties"]
        activities = resolved["attributes"]["activity_id"]["enum"]
        # The dictionary's class_uid and category_uid enums hold only 0 (Unknown); the class fixes both.
        for key, value in (("class_uid", class_uid), ("class_name", resolved["caption"]),
                           ("category_uid", category["uid"]), ("category_name", category["caption"])):
            properties[key].pop("enum", None)
            properties[key]["const"] = value
        schema["allOf"] = [
            rule for rule in schema.get("allOf", [])
            if not set(rule.get("if", {}).get("required", [])) & {"class_uid", "category_uid"}
        ]
        properties["type_uid"]["enum"] = sorted(class_uid * 100 + int(a) for a in activities)
        rules = schema.setdefault("allOf", [])
        for key, activity in sorted(activities.items(), key=lambda kv: int(kv[0])):
            then = {"type_uid": {"const": class_uid * 100 + int(key)}}
            if key != OTHER:
                then["type_name"] = {"const": f"{resolved['caption']}: {activity['caption']}"}
            rules.append({
                "if": {"properties": {"activity_id": {"const": int(key)}}, "required": ["activity_id"]},
                "then": {"properties": then},
            })
        rules += self.profile_requirements(resolved["attributes"])
        self.observables_enum()
        profiles = sorted(self.profiles)
        self.defs["metadata"]["properties"]["profiles"]["items"]["enum"] = profiles
        document = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"https://xf.example/schemas/ocsf-{name.replace('_', '-')}.schema.json",
            "title": f"OCSF {source.version} {resolved['caption']} (class {class_uid})",
            "description": (
                f"Generated by scripts/ocsf_schema.py from the OCSF {source.version} schema source "
                "(third_party/); do not edit. Observables and profile membership are checked by "
                "xf beside this schema (the x-ocsf annotations)."
            ),
            "x-ocsf": {"version": source.version, "class": name, "profiles": profiles},
        }
        document.update(schema)
        document["$defs"] = dict(sorted(self.defs.items()))
        return document

    def profile_requirements(self, attributes):
        """A declared profile's required attributes are required."""
        by_profile = {}
        for name, attribute in attributes.items():
            if "profile" in attribute and attribute.get("requirement") == "required":
                by_profile.setdefault(attribute["profile"], []).append(name)
        return [
            {
                "if": {
                    "properties": {"metadata": {"properties": {"profiles": {"contains": {"const": p}}},
                                                "required": ["profiles"]}},
                    "required": ["metadata"],
                },
                "then": {"required": names},
            }
            for p, names in sorted(by_profile.items())
        ]

    def observables_enum(self):
        """The observable object's type_id takes every observable type the source defines."""
        types = self.source.observable_types()
        observable = self.defs["observable"]
        observable["properties"]["type_id"]["enum"] = [int(key) for key in types]
        observable["allOf"] = [
            rule for rule in observable.get("allOf", []) if "if" not in rule
        ] + [
            {
                "if": {"properties": {"type_id": {"const": int(key)}}, "required": ["type_id"]},
                "then": {"properties": {"type": {"const": caption}}},
            }
            for key, caption in types.items()
            if key != OTHER
        ]


def enum_order(key):
    try:
        return (0, int(key), "")
    except ValueError:
        return (1, 0, str(key))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", default=DEFAULT_SOURCE, help="the OCSF schema source folder")
    parser.add_argument("--class", dest="event_class", default="detection_finding")
    args = parser.parse_args()
    document = Generator(Source(args.source)).event_class(args.event_class)
    json.dump(document, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
