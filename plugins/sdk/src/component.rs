/// Exports a detector as an `rfo:detector` WebAssembly component.
///
/// Invoke it once at the root of a plugin crate with:
/// - `wit_path`: the folder with the WIT contract, relative to the crate's `Cargo.toml`;
/// - `metadata`: a `fn() -> rfo_plugin_sdk::PluginInfo`;
/// - `detect`: a `fn(&rfo_plugin_sdk::ImageView<'_>) -> Result<Vec<Detection>, DetectError>`.
///
/// On `wasm32` targets it runs `wit_bindgen::generate!` for the world `detector` and implements
/// the generated `Guest` trait by converting the WIT records to and from this crate's types, so
/// the crate needs `wit-bindgen` as a wasm32-only dependency. On other targets it expands to
/// nothing, and the detector stays a plain Rust library.
///
/// ```ignore
/// rfo_plugin_sdk::export_detector! {
///     wit_path: "../../wit",
///     metadata: crate::metadata,
///     detect: crate::detect,
/// }
/// ```
#[macro_export]
macro_rules! export_detector {
    (
        wit_path: $wit_path:literal,
        metadata: $metadata:path,
        detect: $detect:path $(,)?
    ) => {
        #[cfg(target_arch = "wasm32")]
        // The code that wit-bindgen generates uses `unsafe` for the canonical ABI.
        #[allow(unsafe_code)]
        mod rfo_component_exports {
            ::wit_bindgen::generate!({
                world: "detector",
                path: $wit_path,
            });

            use exports::rfo::detector::plugin as wit;

            struct Component;

            impl wit::Guest for Component {
                fn metadata() -> wit::PluginInfo {
                    let info: $crate::PluginInfo = $metadata();
                    wit::PluginInfo {
                        name: info.name.to_owned(),
                        version: info.version.to_owned(),
                        detects: info.detects.iter().map(|label| (*label).to_owned()).collect(),
                        description: info.description.to_owned(),
                    }
                }

                fn detect(
                    image: wit::Image,
                ) -> ::core::result::Result<Vec<wit::Detection>, wit::DetectError> {
                    let view = $crate::ImageView {
                        width: image.width,
                        height: image.height,
                        bit_depth: image.bit_depth,
                        channels: image.channels,
                        pixels: &image.pixels,
                    };
                    match $detect(&view) {
                        Ok(detections) => Ok(detections
                            .into_iter()
                            .map(|detection| wit::Detection {
                                region: wit::Region {
                                    x: detection.region.x,
                                    y: detection.region.y,
                                    width: detection.region.width,
                                    height: detection.region.height,
                                },
                                label: detection.label,
                                score: detection.score,
                            })
                            .collect()),
                        Err($crate::DetectError::InvalidImage(message)) => {
                            Err(wit::DetectError::InvalidImage(message))
                        }
                        Err($crate::DetectError::Unsupported(message)) => {
                            Err(wit::DetectError::Unsupported(message))
                        }
                        Err($crate::DetectError::Internal(message)) => {
                            Err(wit::DetectError::Internal(message))
                        }
                    }
                }
            }

            export!(Component);
        }
    };
}
