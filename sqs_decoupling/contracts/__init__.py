"""What the stacks and the runtimes both hold to (limits, names, catalogues), standard library only: synthesis
imports these and none of the runtime's libraries."""
