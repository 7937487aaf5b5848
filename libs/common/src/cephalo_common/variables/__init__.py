"""Variables: Octostache templates, scoped values and precedence, masking, output variables.

Pure Python (standard library and pydantic), no I/O: services and the agent use the same
engine. Start with `evaluate`, `resolve` and `SensitiveMasker`; see README.md.
"""

from cephalo_common.variables.errors import (
    DEFAULT_LIMITS,
    ErrorCode,
    Limits,
    TemplateError,
    TemplateSyntaxError,
)
from cephalo_common.variables.evaluator import (
    Evaluation,
    VariableDictionary,
    evaluate,
    evaluate_truthy,
    evaluate_value,
    is_truthy,
    render,
)
from cephalo_common.variables.filters import FILTERS, FilterContext
from cephalo_common.variables.masking import MASK, SensitiveMasker, mask
from cephalo_common.variables.output_variables import OutputVariables, output_variable_name
from cephalo_common.variables.parser import escape, parse
from cephalo_common.variables.precedence import (
    Candidate,
    DecidingRule,
    Resolution,
    ResolvedVariable,
    resolve,
)
from cephalo_common.variables.scopes import (
    Level,
    ResolutionContext,
    ScopeField,
    ScopeMatch,
    SourceKind,
    VariableSource,
    VariableValue,
    match_scope,
    scope_problems,
)
from cephalo_common.variables.service_messages import (
    CreateArtifact,
    MalformedServiceMessage,
    OutputParser,
    ServiceMessage,
    SetVariable,
    encode_set_variable,
    parse_service_message,
)
from cephalo_common.variables.system_variables import (
    SystemVariables,
    alias_of,
    canonical_name,
    is_system_variable_name,
    system_variable_values,
    with_aliases,
)
from cephalo_common.variables.validation import validate, validate_variable_name

__all__ = [
    "DEFAULT_LIMITS",
    "FILTERS",
    "MASK",
    "Candidate",
    "CreateArtifact",
    "DecidingRule",
    "ErrorCode",
    "Evaluation",
    "FilterContext",
    "Level",
    "Limits",
    "MalformedServiceMessage",
    "OutputParser",
    "OutputVariables",
    "Resolution",
    "ResolutionContext",
    "ResolvedVariable",
    "ScopeField",
    "ScopeMatch",
    "SensitiveMasker",
    "ServiceMessage",
    "SetVariable",
    "SourceKind",
    "SystemVariables",
    "TemplateError",
    "TemplateSyntaxError",
    "VariableDictionary",
    "VariableSource",
    "VariableValue",
    "alias_of",
    "canonical_name",
    "encode_set_variable",
    "escape",
    "evaluate",
    "evaluate_truthy",
    "evaluate_value",
    "is_system_variable_name",
    "is_truthy",
    "mask",
    "match_scope",
    "output_variable_name",
    "parse",
    "parse_service_message",
    "render",
    "resolve",
    "scope_problems",
    "system_variable_values",
    "validate",
    "validate_variable_name",
    "with_aliases",
]
