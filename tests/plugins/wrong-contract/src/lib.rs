//! What a plugin author gets by building against a stale or hand-edited copy
//! of the contract: the provider interface with `describe` returning a plain
//! string and no other function.

wit_bindgen::generate!({
    inline: "
        package trackbridge:plugin@0.1.0;

        interface provider {
            describe: func() -> string;
        }

        world provider-plugin {
            export provider;
        }
    ",
});

// Only a component exports it: a native build (the workspace's tests) cannot
// link symbols named like WIT exports.
#[cfg(target_arch = "wasm32")]
mod component {
    struct WrongContract;

    impl super::exports::trackbridge::plugin::provider::Guest for WrongContract {
        fn describe() -> String {
            "not a provider-info record".into()
        }
    }

    super::export!(WrongContract with_types_in super);
}
