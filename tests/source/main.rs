//! Checks of the source tree itself, run without the local stack: the import rules of `src/`
//! (`layers`) and the documentation against the code (`docs`).

mod docs;
mod layers;
