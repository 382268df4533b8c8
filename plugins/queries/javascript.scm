; ponder's tag patterns for JavaScript, placed before tree-sitter-javascript's queries/tags.scm.
(class_heritage (identifier) @name) @reference.class
(class_heritage (member_expression property: (property_identifier) @name)) @reference.class
