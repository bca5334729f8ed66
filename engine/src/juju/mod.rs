//! The only seam to Juju: the hook context (pure parsing) and the hook tools.

pub mod cached;
pub mod context;
pub mod fake;
pub mod process;
pub mod tools;

pub use context::{Context, ContextError, Event, RelationId, RelationPhase, UnitName};
pub use tools::{Databag, HookTools, Status, StatusKind, ToolError};
