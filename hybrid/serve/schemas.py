"""The shapes of requests and answers, for the OpenAPI document at /docs.

Bodies are not parsed through these models: they go through `parse_article`, as a line of
`tag-file` does, so a wrong type is named as the command line names it (article and
field) and a batch keeps the articles that are fine. These only describe them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ArticleIn(BaseModel):
    """Field names are the `*_field` settings; these are their defaults."""
    id: str | int | None = Field(None, description="Echoed back; names the article in errors")
    title: str | None = None
    description: str | None = None
    content: str | None = Field(None, description="Markdown with inline HTML")


class ModelRef(BaseModel):
    taxonomy_fingerprint: str
    created_at: str
    generation: int = Field(description="Counts the models this process has served")


class SuggestionOut(BaseModel):
    id: str
    categories: list[str] = Field(default_factory=list, description="1-3 authorized names")
    tags: list[str] = Field(default_factory=list)
    confidence: float | None = Field(None, description="Calibrated: that the top category "
                                                       "is right")
    source: str | None = Field(None, description="'model', or 'llm' when the LLM fallback's "
                                                 "answer replaced the model's")
    flags: list[str] = Field(default_factory=list, description="e.g. truncated:content")
    zero_shot: bool | None = None
    llm: dict[str, Any] | None = Field(None, description="What the LLM fallback did, when "
                                                         "it was asked (status 'timeout': "
                                                         "the model's answer, in time)")
    explain: dict[str, Any] | None = Field(None, description="With ?explain=true: what "
                                                             "`predict --explain` shows, "
                                                             "and tag_reasons")
    error: str | None = Field(None, description="In a batch: this article could not be "
                                                "tagged (the others were)")
    model: ModelRef


class BatchOut(BaseModel):
    results: list[SuggestionOut]


class FeedbackIn(BaseModel):
    """The article is named by `id` or by `_id`, not both."""
    id: str | int | None = Field(None, description="The article's id as the API gives it "
                                 "(a MongoDB _id as relaxed Extended JSON text), or a CMS's "
                                 "own: a text must name one article")
    typed_id: Any = Field(None, alias="_id", description="A MongoDB article's _id with its "
                          "type, as Extended JSON (1, \"1\", {\"$oid\": \"…\"}); a review "
                          "row's _id, sent back as it is")
    categories: list[str] = Field(description="Authorized names or aliases")
    tags: list[str] | None = Field(None, description="Omitted or empty: keep the article's")


class FeedbackOut(BaseModel):
    id: str
    categories: list[str]
    tags: list[str] | None
    source: str
    stored: str


class ReloadIn(BaseModel):
    model: str | None = Field(None, description="Model directory; default: the one served")


class ProblemOut(BaseModel):
    type: str = "about:blank"
    title: str
    status: int
    detail: str
    article: str | None = None
    field: str | None = None


def json_body(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    """`openapi_extra` for a route that reads its body itself."""
    return {"requestBody": {"required": required,
                            "content": {"application/json": {"schema": schema}}}}


def batch_schema(limit: int) -> dict[str, Any]:
    return {"type": "object", "required": ["articles"],
            "properties": {"articles": {"type": "array", "maxItems": limit,
                                        "items": ArticleIn.model_json_schema()}}}


PROBLEMS = {status: {"model": ProblemOut, "content": {"application/problem+json": {}},
                     "description": text}
            for status, text in ((401, "No or wrong API key"), (403, "No API key configured"),
                                 (413, "Body too large"), (422, "Bad input: article and field "
                                                                "named"),
                                 (503, "Not ready, overloaded, or no answer in time"))}
