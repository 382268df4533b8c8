; ponder's tag patterns for Rust, placed before tree-sitter-rust's queries/tags.scm.
; An impl block is a definition site for its type's methods (it gives them their scope).
(impl_item type: (type_identifier) @name body: (_)) @definition.implementation
(impl_item type: (generic_type type: (type_identifier) @name) body: (_)) @definition.implementation
(enum_item name: (type_identifier) @name) @definition.type
(type_item name: (type_identifier) @name) @definition.type
(const_item name: (identifier) @name) @definition.constant
(static_item name: (identifier) @name) @definition.constant
; A function in a module body is a function (the grammar's tags.scm calls every function in a
; declaration_list a method); the methods a trait declares without a body are methods.
(mod_item body: (declaration_list (function_item name: (identifier) @name) @definition.function))
(trait_item
  body: (declaration_list (function_signature_item name: (identifier) @name) @definition.method))

; The trait an impl block implements. The reference is the trait's path, not the whole impl_item:
; a reference with the impl's own range would end the impl's scope for the methods inside it.
(impl_item trait: (type_identifier) @name @reference.implementation)
(impl_item trait: (scoped_type_identifier name: (type_identifier) @name) @reference.implementation)
(impl_item trait: (generic_type type: (type_identifier) @name) @reference.implementation)
(impl_item
  trait: (generic_type
    type: (scoped_type_identifier name: (type_identifier) @name)) @reference.implementation)

(call_expression function: (scoped_identifier name: (identifier) @name)) @reference.call
(call_expression
  function: (generic_function function: (identifier) @name)) @reference.call
(call_expression
  function: (generic_function function: (field_expression field: (field_identifier) @name))) @reference.call
(call_expression
  function: (generic_function function: (scoped_identifier name: (identifier) @name))) @reference.call
(struct_expression name: (type_identifier) @name) @reference.class
(struct_expression name: (scoped_type_identifier name: (type_identifier) @name)) @reference.class
(generic_type type: (type_identifier) @name) @reference.type
(type_identifier) @name @reference.type
