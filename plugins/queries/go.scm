; ponder's tag patterns for Go, placed before tree-sitter-go's queries/tags.scm.
(type_spec name: (type_identifier) @name type: (interface_type)) @definition.interface
(type_spec name: (type_identifier) @name type: (struct_type)) @definition.class
(method_elem name: (field_identifier) @name) @definition.method
(const_spec name: (identifier) @name) @definition.constant
(composite_literal type: (type_identifier) @name) @reference.class
