; ponder's tag patterns for Java, placed before tree-sitter-java's queries/tags.scm.
(enum_declaration name: (identifier) @name) @definition.class
(record_declaration name: (identifier) @name) @definition.class
(annotation_type_declaration name: (identifier) @name) @definition.interface
(constructor_declaration name: (identifier) @name) @definition.method

(method_invocation name: (identifier) @name) @reference.call
; Specific type uses first: the catch-all below would otherwise win over tree-sitter-java's own
; superclass / implements / `new` patterns, which come after ours.
(superclass (type_identifier) @name) @reference.class
(superclass (generic_type (type_identifier) @name)) @reference.class
(type_list (type_identifier) @name) @reference.implementation
(type_list (generic_type (type_identifier) @name)) @reference.implementation
(object_creation_expression type: (type_identifier) @name) @reference.class
(object_creation_expression type: (generic_type (type_identifier) @name)) @reference.class
(object_creation_expression
  type: (scoped_type_identifier (type_identifier) @name .)) @reference.class
; All-lowercase names are package segments (`java.util.List`) or `var`, not type uses.
((type_identifier) @name @reference.type
  (#not-match? @name "^[a-z][a-z0-9_]*$"))
