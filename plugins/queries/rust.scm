; ponder's tag patterns for Rust, placed before tree-sitter-rust's queries/tags.scm.
; An impl block is a definition site for its type's methods (it gives them their scope).
(impl_item type: (type_identifier) @name body: (_)) @definition.implementation
(impl_item type: (generic_type type: (type_identifier) @name) body: (_)) @definition.implementation
(enum_item name: (type_identifier) @name) @definition.type
(type_item name: (type_identifier) @name) @definition.type
(const_item name: (identifier) @name) @definition.constant
(static_item name: (identifier) @name) @definition.constant

(call_expression function: (scoped_identifier name: (identifier) @name)) @reference.call
(call_expression
  function: (generic_function function: (identifier) @name)) @reference.call
(call_expression
  function: (generic_function function: (field_expression field: (field_identifier) @name))) @reference.call
(call_expression
  function: (generic_function function: (scoped_identifier name: (identifier) @name))) @reference.call
(struct_expression name: (type_identifier) @name) @reference.class
(generic_type type: (type_identifier) @name) @reference.type
(type_identifier) @name @reference.type
