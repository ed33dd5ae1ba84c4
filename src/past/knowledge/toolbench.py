"""ToolBench as closed-book tool use: SFT on API documentation, then calls from memory.

Input: a ToolBench instruction file (`data/instruction/G1_query.json` and the like): a JSON list of
`{"query", "query_id", "api_list": [{"category_name", "tool_name", "api_name", "api_description",
"required_parameters": [{"name", "type", "description", "default"}], "optional_parameters": [...],
"method", ...}], "relevant APIs": [[tool_name, api_name], ...]}`.

Output: a knowledge set of kind `tool`: one document per API (its documentation, what SFT stores),
`tools` rows `{name, description, parameters}` (a JSON schema), and one question per query whose
answers are the names of its relevant APIs. No documentation is in the prompt: the model must recall
the API name and its parameters. A call succeeds when it names a relevant API, passes every required
parameter and no parameter the API does not have (argument values are not judged: ToolBench queries
carry no gold values). Function names follow ToolLLM's `{api}_for_{tool}` snake case.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from past.errors import DataError
from past.knowledge.format import KnowledgeSet

CALL_PROMPT = ("Answer with one API call, name(parameter=\"value\", ...), from the APIs you know.\n"
               "Request: {question}\nCall:\n")
_NON_WORD = re.compile(r"[^a-z0-9]+")
_KEYWORD_ARG = re.compile(r"([(,]\s*)([A-Za-z_][\w.\-]*)\s*=(?!=)")


def snake(text: str) -> str:
    return _NON_WORD.sub("_", text.lower()).strip("_")


def function_name(tool: str, api: str) -> str:
    return f"{snake(api)}_for_{snake(tool)}"


def tool_schema(api: dict) -> dict:
    """{name, description, parameters}: the API's JSON schema (required parameters listed)."""
    properties = {}
    for p in api.get("required_parameters", []) + api.get("optional_parameters", []):
        properties[p["name"]] = {"type": str(p.get("type", "STRING")).lower(),
                                 "description": str(p.get("description", "")).strip()}
    return {"name": function_name(api["tool_name"], api["api_name"]),
            "description": str(api.get("api_description", "")).strip(),
            "parameters": {"type": "object", "properties": properties,
                           "required": [p["name"] for p in api.get("required_parameters", [])]}}


def api_document(api: dict, schema: dict) -> str:
    """What SFT learns about one API: tool, name, purpose and every parameter."""
    lines = [f"Tool: {api['tool_name']} ({api.get('category_name', 'general')})",
             f"API {schema['name']}: {schema['description'] or api['api_name']}"]
    required = set(schema["parameters"]["required"])
    for pname, spec in schema["parameters"]["properties"].items():
        kind = "required" if pname in required else "optional"
        lines.append(f"- {pname} ({spec['type']}, {kind}): {spec['description']}".rstrip(": "))
    lines.append("Call: " + schema["name"] + "(" + ", ".join(f'{p}="..."' for p in schema["parameters"]["required"]) + ")")
    return "\n".join(lines)


def read_queries(path: str | Path) -> list[dict]:
    path = Path(path)
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError) as err:
        raise DataError(f"{path}: cannot read a ToolBench query file ({err})") from None
    if not isinstance(rows, list):
        raise DataError(f"{path}: expected a JSON list of queries")
    return rows


def toolbench_set(path: str | Path, name: str, split: str, queries: int = 0, prefix: str = "tb",
                  rows: list[dict] | None = None, splits: list[str] | None = None) -> KnowledgeSet:
    """Knowledge set (kind `tool`) of the first `queries` queries of a ToolBench file (0: all), or of `rows`."""
    path = Path(path)
    rows = read_queries(path) if rows is None else rows
    rows = rows[:queries] if queries else rows
    documents, tools, questions, doc_of = [], [], [], {}
    for i, row in enumerate(rows):
        where = f"{path}: query {i}"
        if not row.get("query") or not row.get("api_list"):
            raise DataError(f"{where}: needs 'query' and a non-empty 'api_list'")
        for api in row["api_list"]:
            schema = tool_schema(api)
            if schema["name"] not in doc_of:
                doc_of[schema["name"]] = f"{prefix}-api{len(doc_of):04d}"
                documents.append({"id": doc_of[schema["name"]], "title": api["tool_name"],
                                  "text": api_document(api, schema)})
                tools.append(schema)
        relevant = row.get("relevant APIs") or [[a["tool_name"], a["api_name"]] for a in row["api_list"][:1]]
        answers = [function_name(tool, api) for tool, api in relevant]
        unknown = [a for a in answers if a not in doc_of]
        if unknown:
            raise DataError(f"{where}: relevant API {unknown[0]} is not in its api_list")
        questions.append({"id": f"{prefix}-q{row.get('query_id', i)}", "doc_id": doc_of[answers[0]],
                          "question": " ".join(str(row["query"]).split()), "answers": answers, "split": splits[i] if splits else split})
    return KnowledgeSet(name, "tool", documents, questions, tools=tools)


def relevant_functions(row: dict) -> set[str]:
    relevant = row.get("relevant APIs") or [[a["tool_name"], a["api_name"]] for a in row.get("api_list", [])[:1]]
    return {function_name(tool, api) for tool, api in relevant}


def toolbench_sets(path: str | Path, source: int, target: int, oracle: int) -> dict[str, KnowledgeSet]:
    """Source: the first `source` queries. Target: the next queries none of whose relevant APIs the source
    documents, `target` of them evaluated and `oracle` more for the oracle's RL only."""
    rows = read_queries(path)
    seen = {function_name(a["tool_name"], a["api_name"]) for row in rows[:source] for a in row["api_list"]}
    fresh = [row for row in rows[source:] if not relevant_functions(row) & seen][:target + oracle]
    if len(fresh) < target + oracle:
        raise DataError(f"{path}: only {len(fresh)} queries after the source use APIs it never saw; "
                        f"{target} + {oracle} asked for")
    return {"source": toolbench_set(path, "toolbench-source", "train", source, prefix="tbs", rows=rows),
            "target": toolbench_set(path, "toolbench-target", "eval", prefix="tbt", rows=fresh,
                                    splits=["eval"] * target + ["oracle"] * oracle)}


def parse_call(text: str) -> tuple[str, dict] | None:
    """The first call in a generation: `name(k="v", ...)` or JSON `{"name": ..., "arguments": {...}}`."""
    text = text.strip()
    if text.startswith("{"):
        try:
            call = json.loads(text[:text.rindex("}") + 1])
            args = call.get("arguments", call.get("parameters", {}))
            if isinstance(args, str):
                args = json.loads(args)
            return str(call["name"]), dict(args)
        except (ValueError, KeyError, TypeError):
            return None
    match = re.search(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(", text)
    if not match:
        return None
    depth, end = 0, None
    for j in range(match.end() - 1, len(text)):
        depth += {"(": 1, ")": -1}.get(text[j], 0)
        if depth == 0:
            end = j
            break
    if end is None:
        return None
    # API parameter names may be Python keywords ("from") or hold dashes: parse them as placeholders
    names: list[str] = []

    def placeholder(m: re.Match) -> str:
        names.append(m.group(2))
        return f"{m.group(1)}_p{len(names) - 1}="

    call_text = _KEYWORD_ARG.sub(placeholder, text[match.start():end + 1])
    try:
        node = ast.parse(call_text, mode="eval").body
    except SyntaxError:
        return None
    if not isinstance(node, ast.Call):
        return None
    return match.group(1), {names[int(k.arg[2:])]: _literal(k.value) for k in node.keywords
                            if k.arg and k.arg.startswith("_p")}


def _literal(node):
    try:
        return ast.literal_eval(node)
    except ValueError:
        return ast.unparse(node)


def call_success(prediction: str, answers: list[str], tools: dict[str, dict]) -> float:
    """1.0 when the first call names a relevant API with all its required and only known parameters."""
    call = parse_call(prediction)
    if call is None or call[0] not in answers or call[0] not in tools:
        return 0.0
    schema = tools[call[0]]["parameters"]
    given = set(call[1])
    return float(set(schema["required"]) <= given and given <= set(schema["properties"]))
