//! The microphone, or any capture device, through `cpal` (ALSA on Linux):
//! `--mic` takes the default input device, `--device NAME` a named one.
//! Built with the `mic` feature only, so that a build without the ALSA
//! headers still works.

use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::time::Duration;

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{Data, SampleFormat};

use crate::source::{Chunk, SampleSource};
use crate::MonitorError;

/// Chunks of captured audio waiting for the monitor: about 400 s at 0.1 s
/// per callback; a monitor that falls further behind drops audio
/// (a gap) rather than growing without bound.
const QUEUE: usize = 4096;
/// A device that delivers nothing for this long has failed.
const SILENT_DEVICE: Duration = Duration::from_secs(10);

/// What the capture callback hands over.
enum Captured {
    Audio(Vec<f32>),
    /// Chunks the queue had no room for (seconds).
    Lost(f64),
    Failed(String),
}

/// Live audio from a capture device.
pub struct MicSource {
    rx: Receiver<Captured>,
    rate: u32,
    samples: Vec<f32>,
    /// Capture stops when the stream is dropped.
    _stream: cpal::Stream,
}

impl MicSource {
    /// Opens `device` (a name as `mic_devices` lists it, or the host's
    /// default input when `None`) in its default input configuration.
    pub fn open(device: Option<&str>) -> Result<Self, MonitorError> {
        let host = cpal::default_host();
        let device = match device {
            None => host.default_input_device().ok_or_else(|| {
                MonitorError::Read("no default input device (microphone)".to_owned())
            })?,
            Some(name) => find_device(&host, name)?,
        };
        let config = capture_config(&device)?;
        let format = config.sample_format();

        let rate = config.sample_rate();
        let channels = usize::from(config.channels()).max(1);
        // About 0.1 s per callback: a host's smallest buffers (a few frames)
        // would cost a callback and a queued chunk each.
        let mut stream_config = config.config();
        if let cpal::SupportedBufferSize::Range { min, max } = *config.buffer_size() {
            stream_config.buffer_size = cpal::BufferSize::Fixed((rate / 10).clamp(min, max));
        }
        let (tx, rx) = sync_channel::<Captured>(QUEUE);
        let on_error = {
            let tx = tx.clone();
            move |e: cpal::Error| {
                let _ = tx.try_send(Captured::Failed(e.to_string()));
            }
        };
        let stream = device
            .build_input_stream_raw(
                stream_config,
                format,
                move |data: &Data, _: &cpal::InputCallbackInfo| {
                    deliver(&tx, data, channels, rate);
                },
                on_error,
                None,
            )
            .map_err(|e| MonitorError::Read(format!("opening the input device: {e}")))?;
        stream
            .play()
            .map_err(|e| MonitorError::Read(format!("starting the capture: {e}")))?;
        Ok(MicSource {
            rx,
            rate,
            samples: Vec::new(),
            _stream: stream,
        })
    }
}

/// The cheapest configuration that serves the hashes: the lowest rate from
/// 8 kHz up, the fewest channels, samples the callback converts; the
/// device's default when none fits. Capturing at the device's native
/// rate also spares a resampling plugin in between.
fn capture_config(device: &cpal::Device) -> Result<cpal::SupportedStreamConfig, MonitorError> {
    const LOWEST: u32 = 8000;
    let usable = [SampleFormat::F32, SampleFormat::I16, SampleFormat::I32];
    let best = device.supported_input_configs().ok().and_then(|configs| {
        configs
            .filter(|c| usable.contains(&c.sample_format()) && c.max_sample_rate() >= LOWEST)
            .map(|c| {
                let rate = c.min_sample_rate().max(LOWEST);
                (rate, c.channels(), c.with_sample_rate(rate))
            })
            .min_by_key(|(rate, channels, _)| (*rate, *channels))
            .map(|(_, _, c)| c)
    });
    match best {
        Some(c) => Ok(c),
        None => device
            .default_input_config()
            .map_err(|e| MonitorError::Read(format!("the input device: {e}"))),
    }
}

/// Names of the input devices, for `--device`.
pub fn mic_devices() -> Vec<String> {
    let host = cpal::default_host();
    host.input_devices()
        .map(|ds| {
            ds.filter_map(|d| d.id().ok())
                .map(|id| id.to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The input device whose id (`alsa:NAME`) or id without its host is
/// `name`; an ALSA PCM not listed (no hint) is opened by its name all the
/// same.
fn find_device(host: &cpal::Host, name: &str) -> Result<cpal::Device, MonitorError> {
    if let Ok(devices) = host.input_devices() {
        for d in devices {
            let Ok(id) = d.id() else { continue };
            let full = id.to_string();
            if full == name || full.split_once(':').is_some_and(|(_, n)| n == name) {
                return Ok(d);
            }
        }
    }
    let id = if name.contains(':') {
        name.to_owned()
    } else {
        format!("{}:{name}", host.id().name().to_ascii_lowercase())
    };
    id.parse::<cpal::DeviceId>()
        .ok()
        .and_then(|id| host.device_by_id(&id))
        .ok_or_else(|| {
            MonitorError::Read(format!(
                "no input device '{name}' (devices: {})",
                mic_devices().join(", ")
            ))
        })
}

/// The capture callback: mixes to mono and queues the chunk.
fn deliver(tx: &SyncSender<Captured>, data: &Data, channels: usize, rate: u32) {
    let mono = match data.sample_format() {
        SampleFormat::F32 => mix(data.as_slice::<f32>(), channels, |s| s),
        SampleFormat::I16 => mix(data.as_slice::<i16>(), channels, |s| f32::from(s) / 32768.0),
        SampleFormat::I32 => mix(data.as_slice::<i32>(), channels, |s| {
            s as f32 / 2_147_483_648.0
        }),
        SampleFormat::U16 => mix(data.as_slice::<u16>(), channels, |s| {
            (f32::from(s) - 32768.0) / 32768.0
        }),
        SampleFormat::U8 => mix(data.as_slice::<u8>(), channels, |s| {
            (f32::from(s) - 128.0) / 128.0
        }),
        SampleFormat::I8 => mix(data.as_slice::<i8>(), channels, |s| f32::from(s) / 128.0),
        SampleFormat::F64 => mix(data.as_slice::<f64>(), channels, |s| s as f32),
        other => {
            let _ = tx.try_send(Captured::Failed(format!(
                "unsupported sample format {other}"
            )));
            return;
        }
    };
    if mono.is_empty() {
        return;
    }
    let seconds = mono.len() as f64 / f64::from(rate.max(1));
    if tx.try_send(Captured::Audio(mono)).is_err() {
        let _ = tx.try_send(Captured::Lost(seconds));
    }
}

fn mix<T: Copy>(data: Option<&[T]>, channels: usize, to_f32: impl Fn(T) -> f32) -> Vec<f32> {
    let Some(data) = data else {
        return Vec::new();
    };
    let scale = 1.0 / channels as f32;
    data.chunks_exact(channels)
        .map(|frame| frame.iter().map(|&s| to_f32(s)).sum::<f32>() * scale)
        .collect()
}

impl SampleSource for MicSource {
    fn next_chunk(&mut self) -> Result<Option<Chunk<'_>>, MonitorError> {
        let got = self.rx.recv_timeout(SILENT_DEVICE);
        match got {
            Ok(Captured::Audio(samples)) => {
                self.samples = samples;
                Ok(Some(Chunk::Audio {
                    rate: self.rate,
                    samples: &self.samples,
                }))
            }
            Ok(Captured::Lost(seconds)) => Ok(Some(Chunk::Gap(seconds))),
            Ok(Captured::Failed(why)) => {
                Err(MonitorError::Read(format!("the input device: {why}")))
            }
            Err(RecvTimeoutError::Timeout) => Err(MonitorError::Read(format!(
                "the input device delivered nothing for {} s",
                SILENT_DEVICE.as_secs()
            ))),
            Err(RecvTimeoutError::Disconnected) => Ok(None),
        }
    }

    fn live(&self) -> bool {
        true
    }
}
