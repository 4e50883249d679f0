//! Example programs for the Brightbox image library SDK.
