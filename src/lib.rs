//! The auscout Redis module (SKELETON: filled in by the module work).
