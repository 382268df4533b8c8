; ponder's tag patterns for TypeScript (also used for TSX), placed before the JavaScript and
; TypeScript queries/tags.scm.
(interface_declaration name: (type_identifier) @name) @definition.interface
(type_alias_declaration name: (type_identifier) @name) @definition.type
(enum_declaration name: (identifier) @name) @definition.type
(abstract_class_declaration name: (type_identifier) @name) @definition.class
(class_declaration name: (type_identifier) @name) @definition.class
(internal_module name: (identifier) @name) @definition.module

(extends_clause value: (identifier) @name) @reference.class
(extends_clause value: (member_expression property: (property_identifier) @name)) @reference.class
(implements_clause (type_identifier) @name) @reference.implementation
(implements_clause (generic_type name: (type_identifier) @name)) @reference.implementation
(extends_type_clause type: (type_identifier) @name) @reference.type
(generic_type name: (type_identifier) @name) @reference.type
(type_identifier) @name @reference.type
