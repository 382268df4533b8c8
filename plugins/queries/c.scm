; ponder's tag patterns for C, placed before tree-sitter-c's queries/tags.scm. C++ uses them
; too, after cpp.scm (every node named here exists in both grammars).
(preproc_function_def name: (identifier) @name) @definition.macro
(preproc_def name: (identifier) @name) @definition.macro
(enum_specifier name: (type_identifier) @name body: (_)) @definition.type
(union_specifier name: (type_identifier) @name body: (_)) @definition.class
; Typedefs whose declarator wraps the name: `typedef struct node *NodePtr;`,
; `typedef int (*cmp_fn)(const void *, const void *);`, `typedef char name_t[32];`.
(type_definition declarator: (pointer_declarator declarator: (type_identifier) @name)) @definition.type
(type_definition
  declarator: (function_declarator
    declarator: (parenthesized_declarator
      (pointer_declarator declarator: (type_identifier) @name)))) @definition.type
(type_definition declarator: (array_declarator declarator: (type_identifier) @name)) @definition.type

(call_expression function: (identifier) @name) @reference.call
(call_expression function: (field_expression field: (field_identifier) @name)) @reference.call
(type_identifier) @name @reference.type
